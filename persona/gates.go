package persona

import (
	"strings"
	"time"
	"unicode"

	"github.com/continuum-grid/continuum/api"
)

// Skip reasons: the gate that kept a message from being answered, as
// persona/status counts them.
const (
	skipOwn            = "own"             // the persona's own message
	skipAsleep         = "asleep"          // params.asleep
	skipNotAddressed   = "not_addressed"   // no mention, and not a direct question (or mentionsOnly)
	skipAnsweredBefore = "answered_before" // its reply is already in the log (a redelivery)
	skipReplyCap       = "reply_cap"       // enough personas answered this message
	skipRateLimited    = "rate_limited"    // the room's replies per minute are spent
)

// message is what the gates read of a chat:posted event.
type message struct {
	ev          api.Event
	entry       api.ChatEntry
	room        string
	fromPersona string // the continuum-persona header: a persona's name
}

// addressed reports whether m asks p for an answer: it mentions p (by id or
// name in mentions, or @name in the text), or, unless p answers mentions
// only, it is a direct question (its text ends with '?') from someone who is
// not a persona and that names nobody. Personas' questions wake only the personas they mention,
// so two personas never talk each other into a loop.
func addressed(p *api.Persona, m *message) bool {
	for _, x := range m.entry.Mentions {
		if x == p.ID || strings.EqualFold(x, p.Name) || strings.EqualFold(strings.TrimPrefix(x, "@"), p.Name) {
			return true
		}
	}
	if mentionsName(m.entry.Text, p.Name) {
		return true
	}
	// A question that names someone else is theirs.
	if p.Params.MentionsOnly || m.fromPersona != "" || len(m.entry.Mentions) > 0 || namesSomeone(m.entry.Text) {
		return false
	}
	return strings.HasSuffix(strings.TrimSpace(m.entry.Text), "?")
}

// mentionsName finds "@name" in text as a whole word (case-insensitive).
func mentionsName(text, name string) bool {
	lt, at := strings.ToLower(text), "@"+strings.ToLower(name)
	for i := 0; ; {
		j := strings.Index(lt[i:], at)
		if j < 0 {
			return false
		}
		end := i + j + len(at)
		if end == len(lt) || !isNameRune(rune(lt[end])) {
			return true
		}
		i = end
	}
}

// namesSomeone finds an @name (an '@' before a name character) in text.
func namesSomeone(text string) bool {
	for i := 0; i+1 < len(text); i++ {
		if text[i] == '@' && (i == 0 || !isNameRune(rune(text[i-1]))) && isNameRune(rune(text[i+1])) {
			return true
		}
	}
	return false
}

func isNameRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_'
}

// gate runs the gates that need no log or shared state, in order: own,
// asleep, addressed. It returns the skip reason, or "" to go on.
func gate(p *api.Persona, m *message) string {
	switch {
	case m.ev.Origin == p.ID || m.ev.Sender == p.ID:
		return skipOwn
	case p.Params.Asleep:
		return skipAsleep
	case !addressed(p, m):
		return skipNotAddressed
	}
	return ""
}

// rateWindow is a room's replies over the last minute.
type rateWindow struct {
	at []time.Time
}

// allow says whether one more reply fits max per minute at now.
func (w *rateWindow) allow(now time.Time, max int) bool {
	cut := now.Add(-time.Minute)
	i := 0
	for i < len(w.at) && !w.at[i].After(cut) {
		i++
	}
	w.at = w.at[i:]
	return len(w.at) < max
}

func (w *rateWindow) record(now time.Time) { w.at = append(w.at, now) }
