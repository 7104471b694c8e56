package server

// The configuration file is the single truth for channels and ACLs: edits
// made from clients are written back to it (atomically, keeping a .bak),
// and changes an admin saves to it are applied live.
//
// An edit is confirmed to clients only once the file holding it is on
// disk (durable.go): the handler holds every connection's queue on the
// ticket of the next write (configEditLocked), and the config writer
// finishes the ticket when WriteFile has returned. Edits made while a
// write is on its way are coalesced into the next one. A write that
// fails finishes its ticket too, tells the editors, and is retried with
// the newest state until it succeeds.

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/plenum-voice/plenum/acl"
	"github.com/plenum-voice/plenum/conf"
)

// channelCopy is a channel as it goes into the file, copied under the
// lock so that the file can be produced and written outside it. ACLs are
// immutable once installed, so sharing the pointer is safe.
type channelCopy struct {
	name, description string
	position          int32
	maxUsers          uint32
	acl               *acl.ChannelACL
	links             []string // paths
	shape             shapeKeys
	children          []*channelCopy
}

// writeJob is one version of the file waiting to be written.
type writeJob struct {
	server   conf.Server
	rootACL  *acl.ChannelACL
	children []*channelCopy
	keep     *conf.Config // the previous file, for its temporary channels

	gen     uint64   // configGen when it was queued: a reload since makes it stale
	ticket  *ticket  // finished by the first attempt to write this version; nil when nobody waits
	editors []*user  // whose edits are in it, to be told if it cannot be saved
	ids     idRecord // channel ids noted up to this version, recorded before it is written
}

// configEditLocked is called by a handler that is about to change what
// the file holds, before it tells anyone: every message queued from now
// on waits until the version of the file with the change is on disk.
// The critical section must end with s.unlock, which queues that version.
func (s *Server) configEditLocked(editor *user) {
	if s.configPath == "" {
		return
	}
	if s.nextTicket == nil {
		s.nextTicket = newTicket()
	}
	s.holdLocked(s.nextTicket)
	if editor != nil && !slices.Contains(s.nextEditors, editor) {
		s.nextEditors = append(s.nextEditors, editor)
	}
	s.configDirty = true
}

// channelsChangedLocked is called after the channel tree or an ACL
// changed; s.unlock then queues the new state for the config writer.
func (s *Server) channelsChangedLocked() {
	s.configDirty = true
}

// queueConfigLocked copies the state the file holds and queues it for the
// config writer, replacing an older version that still waits (whose
// ticket and editors it shares).
func (s *Server) queueConfigLocked() {
	s.configDirty = false
	if s.configPath == "" {
		return
	}
	paths := map[*channel]string{s.root: ""}
	for _, ch := range s.breadthFirst()[1:] {
		paths[ch] = conf.JoinPath(paths[ch.parent], ch.name)
	}
	var copyOf func(ch *channel) *channelCopy
	copyOf = func(ch *channel) *channelCopy {
		cc := &channelCopy{name: ch.name, description: ch.description, position: ch.position, maxUsers: ch.maxUsers, acl: ch.acl, shape: ch.shapeKeys}
		for l := range ch.links {
			if !l.temporary {
				cc.links = append(cc.links, paths[l])
			}
		}
		sort.Strings(cc.links)
		for _, child := range ch.children {
			if !child.temporary { // temporary channels are never stored, as in Murmur
				cc.children = append(cc.children, copyOf(child))
			}
		}
		return cc
	}
	// The [server] section is the file's own, not the settings in force:
	// those include command-line overrides (-listen, -data, -admin-listen)
	// and leave out edits that wait for a restart.
	// default_channel follows its channel through renames, moves and
	// its removal (then it is the root, "").
	server := s.config.Server
	server.DefaultChannel = paths[s.defaultChannel]
	s.nextWrite = &writeJob{
		server: server, rootACL: s.root.acl, children: copyOf(s.root).children, keep: s.config,
		gen: s.configGen, ticket: s.nextTicket, editors: s.nextEditors,
	}
	s.wakeWriterLocked()
}

// wakeWriterLocked tells the config writer that there is work.
func (s *Server) wakeWriterLocked() {
	select {
	case s.writeReady <- struct{}{}:
	default: // the writer has been told already
	}
}

// takeConfigJob takes the newest version waiting to be written, and the
// channel ids noted until then; edits from now on wait for the write
// after it.
func (s *Server) takeConfigJob() (*writeJob, idRecord) {
	s.mu.Lock()
	defer s.unlock()
	job := s.nextWrite
	s.nextWrite, s.nextTicket, s.nextEditors = nil, nil, nil
	return job, s.ids.take()
}

// How long the config writer waits before trying a failed write again:
// doubling from the first to the last.
const (
	firstRetry = 250 * time.Millisecond
	lastRetry  = 10 * time.Second
)

// configWriter writes queued versions of the file until it is stopped,
// then writes whatever is still queued. A version that could not be
// written is tried again (or a newer one instead) until a write succeeds.
func (s *Server) configWriter() {
	var (
		failed   *writeJob // the newest version not on disk, after a failed write
		told     []*user   // editors told that their edit is not saved yet
		retry    *time.Timer
		retryC   <-chan time.Time
		interval = firstRetry
	)
	stopRetry := func() {
		if retry != nil {
			retry.Stop()
			retry, retryC = nil, nil
		}
	}
	defer stopRetry()
	for {
		last := false
		select {
		case <-s.writeReady:
		case <-retryC:
			retry, retryC = nil, nil
		case <-s.writerStop:
			last = true
		}
		job, ids := s.takeConfigJob()
		if job == nil {
			s.recordChannelIDs(ids) // nobody waits for them
			job = failed
		} else {
			job.ids = ids
		}
		if job != nil {
			err := s.writeConfig(job)
			switch {
			case errors.Is(err, errSuperseded):
				stopRetry()
				s.tellSuperseded(told) // the editors of this version have been told
				failed, told, interval = nil, nil, firstRetry
			case err == nil:
				stopRetry()
				if failed != nil {
					s.log.Info("configuration written after earlier failures; nothing is lost", "file", s.configPath)
				}
				for _, u := range told {
					u.conn.send(textMessage("Your earlier change to channels or ACLs is now saved."))
				}
				failed, told, interval = nil, nil, firstRetry
			case last:
				s.log.Error("the configuration could not be written before stopping; edits made since the last successful write are lost",
					"file", s.configPath, "err", err)
			default:
				failed = job
				for _, u := range job.editors {
					if !slices.Contains(told, u) {
						s.reportUnsaved(u, "change to channels or ACLs", err,
							"The server keeps trying to save it; should it restart before that succeeds, the change is lost.")
						told = append(told, u)
					}
				}
				job.editors = nil
				if retry == nil {
					retry = time.NewTimer(interval)
					retryC = retry.C
					interval = min(2*interval, lastRetry)
				}
			}
			// After the editors were told: whoever waits for the ticket
			// (the admin API, durable.go's holds) finds the verdict.
			finishTicket(job)
		}
		if last {
			return
		}
	}
}

// writeConfigFile is conf.WriteFile; tests replace it with a slow one.
var writeConfigFile = conf.WriteFile

// beforeConfigWrite runs when the writer has taken a version and is about
// to write it; tests use it to change the file in that moment.
var beforeConfigWrite = func() {}

// writeConfig writes one version of the file; the caller finishes its
// ticket, whether the write succeeded or not, once it has told the
// editors what became of it (finishTicket). A version made stale by a reload is
// not written, and neither is any version while the file on disk holds
// an admin's change the server has not read yet: the server reads that
// first, and the admin's file wins (supersedePendingWriteLocked).
func (s *Server) writeConfig(job *writeJob) error {
	beforeConfigWrite()
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	// The ids first, even for a version that is not written: they are
	// in force (channelid.go), and the file may have a channel under a new
	// path, which must not come back with a new id.
	s.recordChannelIDs(job.ids)
	job.ids = idRecord{}
	if s.staleJob(job) {
		return errSuperseded
	}
	if changed, err := s.fileChangedLocked(); err != nil {
		return err
	} else if changed {
		if err := s.reloadFileLocked(true); err != nil {
			return fmt.Errorf("%w: %w", errEditedFileInvalid, err)
		}
		s.staleJob(job) // the reload made it stale: this tells its editors
		return errSuperseded
	}
	cfg := s.jobConfig(job)
	data, err := conf.Encode(cfg)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	// What the file will be: a crash test checks that the file is always
	// one of these, never a mix.
	s.log.Debug("writing the configuration", "file", s.configPath, "sha256", hex.EncodeToString(sum[:]))
	cancel := func() bool { return false }
	if job.ticket != nil {
		cancel = s.releaseSlow(job.ticket, "configuration "+s.configPath)
	}
	err = writeConfigFile(s.configPath, cfg)
	cancel()
	if err != nil {
		s.log.Error("writing the configuration failed; the running state is ahead of the file until a retry succeeds",
			"file", s.configPath, "err", err)
		return err
	}
	s.fileSum = sum
	s.mu.Lock()
	s.config = cfg
	s.unlock()
	s.log.Info("configuration written", "file", s.configPath)
	s.shareConfig(cfg, job.editors)
	return nil
}

// finishTicket releases what waits for the job's write: the
// confirmations go out now; a retry of this version holds nobody.
func finishTicket(job *writeJob) {
	if job.ticket != nil {
		job.ticket.finish()
		job.ticket = nil
	}
}

// errSuperseded: the version was not written because an admin's edit of
// the file was applied after it was queued.
var errSuperseded = errors.New("superseded by the file on disk")

// errEditedFileInvalid: the admin's edit of the file is not valid, and
// the server does not overwrite it with its own version.
var errEditedFileInvalid = errors.New("the configuration file was edited on disk and does not load")

// staleJob reports whether job was queued before the latest reload from
// the file; its editors are told that the file's version won.
func (s *Server) staleJob(job *writeJob) bool {
	s.mu.Lock()
	stale := job.gen != s.configGen
	s.unlock()
	if stale {
		s.tellSuperseded(job.editors)
		job.editors = nil
	}
	return stale
}

// tellSuperseded tells editors that their change was overridden by an
// admin's edit of the file made at the same time.
func (s *Server) tellSuperseded(editors []*user) {
	for _, u := range editors {
		u.conn.send(textMessage("Your change to channels or ACLs was not saved: the configuration file was edited on disk at the same moment, and its version is now in force."))
	}
}

// fileChangedLocked reports whether the file on disk differs from the
// version the running state last agreed with. A missing file has not
// changed: the server writes it (the embedded default's first edit).
func (s *Server) fileChangedLocked() (bool, error) {
	data, err := os.ReadFile(s.configPath)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return sha256.Sum256(data) != s.fileSum, nil
}

// jobConfig is the configuration file a queued version of the state
// becomes.
func (s *Server) jobConfig(job *writeJob) *conf.Config {
	cfg := &conf.Config{Server: job.server, File: s.configPath}
	if job.keep != nil {
		cfg.AdminTokens = job.keep.AdminTokens // the file's, untouched by edits from clients
	}
	_, cfg.Groups, cfg.ACL = s.aclToConfig(job.rootACL)
	for _, cc := range job.children {
		cfg.Channels = append(cfg.Channels, s.channelToConfig(cc))
	}
	keepFileTemporaries(cfg, job.keep)
	return cfg
}

func (s *Server) channelToConfig(cc *channelCopy) conf.Channel {
	ch := conf.Channel{Name: cc.name, Description: cc.description, Position: cc.position, MaxUsers: cc.maxUsers, Links: cc.links}
	cc.shape.to(&ch)
	ch.InheritACL, ch.Groups, ch.ACL = s.aclToConfig(cc.acl)
	for _, child := range cc.children {
		ch.Children = append(ch.Children, s.channelToConfig(child))
	}
	return ch
}

// keepFileTemporaries puts the temporary channels defined in the previous
// file back: the server removes them while they are empty, but they belong
// to the admin's file and come back on the next start.
func keepFileTemporaries(cfg, prev *conf.Config) {
	if prev == nil {
		return
	}
	prev.Walk(func(path string, ch *conf.Channel, parent string) {
		if !ch.Temporary {
			return
		}
		siblings := &cfg.Channels
		if parent != "" {
			p := cfg.Lookup(parent)
			if p == nil {
				return
			}
			siblings = &p.Children
		}
		for _, sib := range *siblings {
			if sib.Name == ch.Name {
				return
			}
		}
		kept := *ch
		kept.Links = nil // links are to be re-made by the admin if the partner changed
		*siblings = append(*siblings, kept)
	})
}

// configFileFor returns where channel edits are written: the loaded file,
// or plenum.toml in the data directory when running on the embedded
// default.
func configFileFor(cfg *conf.Config, dataDir string) string {
	if cfg.File != "" {
		return cfg.File
	}
	return filepath.Join(dataDir, DefaultConfigFile)
}

// DefaultConfigFile is the name of the configuration Plenum keeps in its
// data directory when started without -config.
const DefaultConfigFile = "plenum.toml"
