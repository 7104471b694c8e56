// Package webhook asks an organisation's own membership database about a
// login over HTTP: Plenum POSTs the name, password and certificate hash
// as JSON, and the endpoint answers accept, refuse or unknown, with the
// member's id, display name and groups. It is the contract of Murmur's
// Ice authenticator, spoken as JSON; docs/AUTH.md describes it with an
// example.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/plenum-voice/plenum/auth"
)

// maxAnswer bounds the answer read: a member's id, name and a few groups
// fit in far less.
const maxAnswer = 64 << 10

// Request is the JSON body Plenum sends.
type Request struct {
	Name            string `json:"name"`
	Password        string `json:"password"`
	CertificateHash string `json:"certificate_hash"` // lowercase hex SHA-1, "" without a certificate
	Kind            string `json:"kind"`             // "mumble" or "web"
}

// Answer is the JSON body the endpoint answers with (status 200).
type Answer struct {
	Result      string          `json:"result"`  // "accept", "refuse" or "unknown"
	UserID      json.RawMessage `json:"user_id"` // a string or an integer; required to accept
	DisplayName string          `json:"display_name"`
	Groups      []string        `json:"groups"`
	Reason      string          `json:"reason"` // shown to a refused client
}

// Webhook is the provider.
type Webhook struct {
	url, bearer string
	client      *http.Client
}

// New returns a provider that POSTs to url, with "Authorization: Bearer
// token" when token is set.
func New(url, token string) *Webhook {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 16
	return &Webhook{url: url, bearer: token, client: &http.Client{
		Transport: t,
		// A redirect would send the password somewhere the admin did
		// not name; the 3xx is reported instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Authenticate implements auth.Authenticator.
func (w *Webhook) Authenticate(ctx context.Context, r auth.Request) (auth.Answer, error) {
	body, err := json.Marshal(Request{Name: r.Name, Password: r.Password, CertificateHash: r.CertHash, Kind: r.Kind.String()})
	if err != nil {
		return auth.Answer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return auth.Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if w.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+w.bearer)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		// The error names the URL and what failed; the body (with the
		// password) is not in it.
		return auth.Answer{}, fmt.Errorf("%w: %w", auth.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return auth.Answer{}, fmt.Errorf("%w: reading the answer: %w", auth.ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return auth.Answer{}, fmt.Errorf("%w: the webhook answered %s", auth.ErrUnavailable, resp.Status)
	}
	if len(data) > maxAnswer {
		return auth.Answer{}, fmt.Errorf("%w: the answer is larger than %d bytes", auth.ErrUnavailable, maxAnswer)
	}
	return Decode(data)
}

// Decode reads an answer body. Anything but a well-formed answer is an
// error (wrapping auth.ErrUnavailable): a broken endpoint must not let
// anybody in, nor refuse people it was not asked about.
func Decode(data []byte) (auth.Answer, error) {
	var a Answer
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&a); err != nil {
		return auth.Answer{}, fmt.Errorf("%w: the answer is not the JSON expected: %w", auth.ErrUnavailable, err)
	}
	if dec.More() {
		return auth.Answer{}, fmt.Errorf("%w: the answer has more than one JSON value", auth.ErrUnavailable)
	}
	switch strings.ToLower(a.Result) {
	case "accept":
		id, err := userID(a.UserID)
		if err != nil {
			return auth.Answer{}, err
		}
		return auth.Answer{Verdict: auth.Accept, Subject: id, DisplayName: a.DisplayName, Groups: auth.CleanGroups(a.Groups)}, nil
	case "refuse":
		return auth.Answer{Verdict: auth.Refuse, Reason: a.Reason}, nil
	case "unknown":
		return auth.Answer{Verdict: auth.Unknown}, nil
	}
	return auth.Answer{}, fmt.Errorf("%w: result %q is not accept, refuse or unknown", auth.ErrUnavailable, a.Result)
}

// userID accepts a JSON string or integer.
func userID(raw json.RawMessage) (string, error) {
	var s string
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", fmt.Errorf("%w: the webhook accepted without a user_id", auth.ErrUnavailable)
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%w: user_id: %w", auth.ErrUnavailable, err)
		}
	default:
		if _, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
			return "", fmt.Errorf("%w: user_id must be a string or an integer, got %.40s", auth.ErrUnavailable, raw)
		}
		s = string(raw)
	}
	if s == "" || len(s) > 1024 {
		return "", fmt.Errorf("%w: the webhook's user_id is empty or longer than 1024 bytes", auth.ErrUnavailable)
	}
	return s, nil
}
