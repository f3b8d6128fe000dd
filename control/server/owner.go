package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/withobsrvr/cdpd/control/contract"
)

// Principals: who a caller is, apart from any owner token it carries.
const (
	principalTLS   = "tls:"  // + the verified client certificate's identity (certIdentity)
	principalAddr  = "addr:" // + the peer's IP address
	principalLocal = "local" // a peer without an IP address (a unix socket)
	// principalInProcess is a call made inside the server's process (no peer: tests, or the
	// code that embeds the server). It is trusted: it may act on any service.
	principalInProcess = "in-process"
)

// caller is who makes an RPC: its principal and the owner token it carries ("" when none).
type caller struct {
	principal string
	token     string
}

// callerOf identifies the caller of an RPC. A token longer than contract.MaxOwnerTokenLen, or
// several different tokens, are invalid.
func callerOf(ctx context.Context) (caller, error) {
	c := caller{principal: principalOf(ctx)}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, v := range md.Get(contract.OwnerTokenHeader) {
			if c.token != "" && v != c.token {
				return c, invalid("several different %s values", contract.OwnerTokenHeader)
			}
			c.token = v
		}
	}
	if len(c.token) > contract.MaxOwnerTokenLen {
		return c, invalid("%s is %d bytes long, the limit is %d", contract.OwnerTokenHeader, len(c.token), contract.MaxOwnerTokenLen)
	}
	return c, nil
}

// principalOf is the mTLS identity of the peer when it presented a verified client
// certificate, else its IP address.
func principalOf(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return principalInProcess
	}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
		if ch := ti.State.VerifiedChains; len(ch) > 0 && len(ch[0]) > 0 {
			return principalTLS + certIdentity(ch[0][0])
		}
	}
	switch a := p.Addr.(type) {
	case *net.TCPAddr:
		return principalAddr + a.IP.String()
	case nil:
		return principalLocal
	}
	if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil && net.ParseIP(host) != nil {
		return principalAddr + host
	}
	return principalLocal
}

// certIdentity is a client certificate's identity: its subject and its subject alternative
// names, so that a renewed certificate (same names, new key) is the same client.
func certIdentity(c *x509.Certificate) string {
	var sans []string
	for _, n := range c.DNSNames {
		sans = append(sans, "dns="+n)
	}
	for _, u := range c.URIs {
		sans = append(sans, "uri="+u.String())
	}
	for _, ip := range c.IPAddresses {
		sans = append(sans, "ip="+ip.String())
	}
	for _, m := range c.EmailAddresses {
		sans = append(sans, "email="+m)
	}
	slices.Sort(sans)
	id := c.Subject.String()
	if len(sans) > 0 {
		id += ";" + strings.Join(sans, ",")
	}
	return id
}

// owner is the identity a service is bound to. The token itself is never kept: only its
// SHA-256, which is what the database holds.
type owner struct {
	principal string   // "" for a service loaded from a database without owners: unowned
	token     [32]byte // SHA-256 of the owner token (zero: none)
	// strict: the registrant sent its own token, so every later call must carry it; otherwise
	// (a client without tokens) a call without a token is admitted on the principal alone.
	strict bool
}

func hashToken(t string) [32]byte {
	if t == "" {
		return [32]byte{}
	}
	return sha256.Sum256([]byte(t))
}

func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ownerFor is the owner a caller becomes with token (its own or an issued one).
func ownerFor(c caller, token string) owner {
	return owner{principal: c.principal, token: hashToken(token), strict: c.token != ""}
}

func (o owner) unowned() bool { return o.principal == "" }

// admits reports whether c may act on a service owned by o (see the package doc): a caller
// with a token must carry o's token (and, under mTLS, o's certificate); a caller without one
// must be o's principal, and o must not require a token.
func (o owner) admits(c caller) bool {
	if o.unowned() || c.principal == principalInProcess {
		return true
	}
	if c.token != "" {
		h := hashToken(c.token)
		if subtle.ConstantTimeCompare(h[:], o.token[:]) != 1 {
			return false
		}
		return !strings.HasPrefix(o.principal, principalTLS) || c.principal == o.principal
	}
	return !o.strict && c.principal == o.principal
}

// Database encoding of an owner: strict byte, 32-byte token hash, principal.
func (o owner) encode() []byte {
	b := make([]byte, 0, 33+len(o.principal))
	s := byte(0)
	if o.strict {
		s = 1
	}
	b = append(b, s)
	b = append(b, o.token[:]...)
	return append(b, o.principal...)
}

func decodeOwner(b []byte) (owner, error) {
	if len(b) < 34 {
		return owner{}, errors.New("corrupt owner record")
	}
	var o owner
	o.strict = b[0] == 1
	copy(o.token[:], b[1:33])
	o.principal = string(b[33:])
	return o, nil
}

// live reports whether e's owner still holds it at now: it heartbeated (or registered, or the
// server started) within HeartbeatTTL. e.mu held.
func (s *Server) liveLocked(e *entry, now time.Time) bool {
	ref := e.lastHB
	if ref.Before(s.started) {
		ref = s.started // grace after a restart of the server, as the janitor gives
	}
	return now.Sub(ref) <= s.opts.HeartbeatTTL
}

func denied(id string, o owner, what string) error {
	return status.Errorf(codes.PermissionDenied,
		"service %s belongs to another client (%s): %s", id, o.principal, what)
}

// setEntryLocked makes e the entry of id (nil: removes it), keeping the per-client counts.
// s.mu held.
func (s *Server) setEntryLocked(id string, e *entry) {
	if old := s.entries[id]; old != nil {
		s.countLocked(old.owner.principal, -1)
	}
	if e == nil {
		delete(s.entries, id)
		return
	}
	s.entries[id] = e
	s.countLocked(e.owner.principal, 1)
}

func (s *Server) countLocked(principal string, d int) {
	n := s.perClient[principal] + d
	if n <= 0 {
		delete(s.perClient, principal)
		return
	}
	s.perClient[principal] = n
}

// bindOwner binds an unowned service (loaded from a database written before services had
// owners) to the caller of its first heartbeat.
func (s *Server) bindOwner(e *entry, c caller) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries[e.id] != e {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.owner.unowned() {
		return
	}
	s.countLocked(e.owner.principal, -1)
	e.owner = ownerFor(c, c.token)
	s.countLocked(e.owner.principal, 1)
	s.markDirty(e.id)
}

// Owner returns the principal that owns a registered service ("tls:<certificate subject and
// names>", "addr:<IP>", "local" or "in-process") and whether the id is registered. The owner token is
// never returned.
func (s *Server) Owner(id string) (principal string, ok bool) {
	e := s.lookup(id)
	if e == nil {
		return "", false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.owner.principal, true
}
