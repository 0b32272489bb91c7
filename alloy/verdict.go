package alloy

import (
	"errors"
	"fmt"

	"github.com/continuum-grid/continuum/alloy/jcs"
)

// Verdict is the signed outcome of a verification.
type Verdict struct {
	AlloyHash  string  `json:"alloyHash"`  // the alloy judged
	PolicyHash string  `json:"policyHash"` // sha256 of {"expect", "proof"} it was judged against
	Passed     bool    `json:"passed"`
	Reason     string  `json:"reason,omitempty"` // the first failing check's reason
	Checks     []Check `json:"checks"`
	Verifier   string  `json:"verifier,omitempty"` // peer id of the signer
	VerifiedAt int64   `json:"verifiedAt"`         // unix milliseconds
	Sig        string  `json:"sig,omitempty"`      // base64 Ed25519 over PAE(PayloadVerdict, …)
}

// Check is one thing a verdict judged.
type Check struct {
	Kind    string  `json:"kind"` // one of the Check* constants
	Name    string  `json:"name"`
	Stage   string  `json:"stage,omitempty"`
	Metric  string  `json:"metric,omitempty"`
	Passed  bool    `json:"passed"`
	Reason  string  `json:"reason,omitempty"`
	N       int     `json:"n,omitempty"`
	Median  *int64  `json:"median,omitempty"`
	Band    *Band   `json:"band,omitempty"`
	Samples []int64 `json:"samples,omitempty"` // raw, in measurement order
}

// Band is an inclusive range of integers.
type Band struct {
	Min int64 `json:"min"`
	Max int64 `json:"max"`
}

// Marshal returns the verdict's canonical bytes.
func (v *Verdict) Marshal() ([]byte, error) { return canonical(v) }

func verdictBody(v Verdict) ([]byte, error) {
	m, err := toMap(v)
	if err != nil {
		return nil, err
	}
	delete(m, "sig")
	return jcs.Append(nil, m)
}

// Sign sets Verifier to the signer's peer id and signs the verdict.
func (v *Verdict) Sign(s Signer) error {
	v.Verifier = s.PeerID()
	v.Sig = ""
	body, err := verdictBody(*v)
	if err != nil {
		return err
	}
	v.Sig = sign(s, PayloadVerdict, body)
	return nil
}

// OpenVerdict checks a verdict's signature over its canonical bytes, then
// decodes it.
func OpenVerdict(data []byte) (*Verdict, error) {
	if len(data) > MaxSize {
		return nil, formatErr("verdict of %d bytes is over the limit", len(data))
	}
	g, err := jcs.Parse(data, jcs.Options{IntegersOnly: true})
	if err != nil {
		return nil, formatErr("%v", err)
	}
	m, ok := g.(map[string]any)
	if !ok {
		return nil, formatErr("a verdict is a JSON object")
	}
	id, _ := m["verifier"].(string)
	sig, _ := m["sig"].(string)
	if id == "" || sig == "" {
		return nil, errors.New("alloy: the verdict is not signed")
	}
	rest := map[string]any{}
	for k, x := range m {
		if k != "sig" {
			rest[k] = x
		}
	}
	body, err := jcs.Append(nil, rest)
	if err != nil {
		return nil, formatErr("%v", err)
	}
	if err := verifySig(id, sig, PayloadVerdict, body); err != nil {
		return nil, fmt.Errorf("alloy: verdict: %w", err)
	}
	canon, err := jcs.Append(nil, g)
	if err != nil {
		return nil, formatErr("%v", err)
	}
	v := new(Verdict)
	if err := decodeStrict(canon, v); err != nil {
		return nil, formatErr("verdict: %v", err)
	}
	return v, nil
}
