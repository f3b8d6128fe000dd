package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/withobsrvr/cdpd/control"
	"github.com/withobsrvr/cdpd/control/contract"
	"github.com/withobsrvr/cdpd/internal/atomicfile"
)

// OwnerTokenFile is the file of the state directory that keeps the daemon's control plane
// owner token (control.Config.OwnerToken): the secret with which cdpd proves it owns its
// pipelines' services. Keeping it across restarts lets a restarted (or crashed) cdpd take its
// services back at once instead of waiting for the control plane's TTL. Mode 0600; it never
// appears in a log, the API or a heartbeat.
const OwnerTokenFile = "control-owner-token"

// ownerToken reads the state directory's owner token, creating it on first use.
func ownerToken(stateDir string) (string, error) {
	path := filepath.Join(stateDir, OwnerTokenFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		tok := strings.TrimSpace(string(b))
		if tok == "" || len(tok) > contract.MaxOwnerTokenLen {
			return "", fmt.Errorf("the control plane owner token in %s is empty or longer than %d bytes: delete the file to get a new one", path, contract.MaxOwnerTokenLen)
		}
		return tok, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("reading the control plane owner token: %w", err)
	}
	tok := control.NewOwnerToken()
	if err := atomicfile.WriteFile(path, []byte(tok+"\n")); err != nil {
		return "", fmt.Errorf("writing the control plane owner token: %w", err)
	}
	return tok, nil
}
