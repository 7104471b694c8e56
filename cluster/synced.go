package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"

	"github.com/plenum-voice/plenum/internal/atomicfile"
)

// synced is what a node last agreed with the cluster on, per document:
// the revision and the hash of its content. Kept in a file in the data
// directory, it tells a change made here while the node was stopped (an
// admin's edit of the configuration file, plenum supw) from one the
// cluster made meanwhile: at start, a local change on top of the
// cluster's current revision becomes the next revision; if the cluster
// moved on too, the cluster's revision wins and the log says so.
type synced map[string]syncedDoc

type syncedDoc struct {
	Revision uint64 `json:"revision"`
	SHA256   string `json:"sha256"`
}

func contentSum(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// loadSynced reads the file; a missing file (or none configured) is an
// empty record.
func loadSynced(path string) (synced, error) {
	s := synced{}
	if path == "" {
		return s, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return synced{}, nil // unreadable: as if never synced, the cluster wins
	}
	return s, nil
}

// note records that this node runs revision rev with content data of
// key, and saves the record.
func (n *Node) note(key string, rev uint64, data []byte) {
	if n.opts.StateFile == "" {
		return
	}
	n.synced[key] = syncedDoc{Revision: rev, SHA256: contentSum(data)}
	out, err := json.MarshalIndent(n.synced, "", "  ")
	if err == nil {
		err = atomicfile.Write(n.opts.StateFile, out, 0o600)
	}
	if err != nil {
		n.log.Warn("recording the shared state's revisions failed", "file", n.opts.StateFile, "err", err)
	}
}
