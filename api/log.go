package api

// LogStats answers log/stats: what the airc log holds.
type LogStats struct {
	Head          uint64            `msgpack:"head" json:"head" desc:"seq of the newest event in the log"`
	Lamport       uint64            `msgpack:"lamport" json:"lamport" desc:"the lamport clock"`
	Epoch         uint64            `msgpack:"epoch" json:"epoch" desc:"the log's epoch; cursors carry it"`
	Events        uint64            `msgpack:"events" json:"events" desc:"events stored"`
	Bytes         uint64            `msgpack:"bytes" json:"bytes" desc:"encoded bytes of the stored events"`
	FileBytes     int64             `msgpack:"fileBytes" json:"fileBytes" desc:"size of the whole state file"`
	Rejections    uint64            `msgpack:"rejections" json:"rejections" desc:"received events refused so far"`
	ForkedOrigins int               `msgpack:"forkedOrigins" json:"forkedOrigins" desc:"origins caught signing two histories"`
	Channels      []LogChannelStats `msgpack:"channels" json:"channels" desc:"per channel, sorted by name"`
}

// LogChannelStats describes one channel of the log.
type LogChannelStats struct {
	Channel     string `msgpack:"channel" json:"channel" desc:"channel name"`
	Events      uint64 `msgpack:"events" json:"events" desc:"events stored"`
	Bytes       uint64 `msgpack:"bytes" json:"bytes" desc:"encoded bytes stored"`
	LastSeq     uint64 `msgpack:"lastSeq" json:"lastSeq" desc:"seq of the newest event"`
	LastLamport uint64 `msgpack:"lastLamport" json:"lastLamport" desc:"highest lamport"`
}
