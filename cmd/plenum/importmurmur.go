package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/plenum-voice/plenum/conf"
	"github.com/plenum-voice/plenum/store"
)

// Files in the data directory that receive the certificate and key a
// Murmur server kept in its database, so that clients which pinned it see
// the same server.
const (
	murmurCertFile = "murmur-cert.pem"
	murmurKeyFile  = "murmur-key.pem"
)

// runImportMurmur implements `plenum import-murmur DB`: it reads one virtual
// server of a Murmur SQLite database (never writing to it), registers its
// users that have a certificate and its bans in Plenum's store, and writes
// the equivalent configuration (server settings, channels, groups, ACLs) as
// a TOML file.
func runImportMurmur(args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("plenum import-murmur", flag.ContinueOnError)
	configPath := flags.String("config", "", "TOML configuration `file` whose data_dir receives users and bans")
	dataDir := flags.String("data", "", "data `directory` for users and bans (overrides the config)")
	out := flags.String("out", "plenum.toml", "TOML `file` to write")
	force := flags.Bool("force", false, "overwrite -out (keeping FILE.bak) and certificate files in the data directory")
	server := flags.Int64("server", 1, "Murmur virtual server `id` to import")
	prefix := flags.String("prefix", "", "Murmur's table `prefix` (its ini's dbPrefix; default: from -ini, else none)")
	iniPath := flags.String("ini", "", "Murmur's ini `file` (e.g. /etc/mumble-server.ini): settings not overridden in the database, and dbPrefix")
	flags.Usage = func() {
		fmt.Fprintln(flags.Output(), `usage: plenum import-murmur [flags] DB

Reads a Murmur (mumble-server) SQLite database and writes the equivalent
Plenum configuration (-out) plus registered users and bans (into the data
directory's store). The database is opened read-only; stop Murmur first so
that it is consistent.

Murmur's password hashes cannot be carried over: set SuperUser's password
with "plenum supw", and users who logged in with a password only (no
certificate) must register again. Bans that have not expired keep all
Murmur stored: address and mask, start, duration, reason, name and
certificate hash.`)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() != 1 {
		flags.Usage()
		return fmt.Errorf("import-murmur needs exactly one database file")
	}
	dbPath := flags.Arg(0)

	if _, err := os.Stat(*out); err == nil && !*force {
		return fmt.Errorf("%s exists; choose another -out or add -force (the old file is kept as %s.bak)", *out, *out)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var ini map[string]string
	if *iniPath != "" {
		var err error
		if ini, err = readMurmurIni(*iniPath); err != nil {
			return fmt.Errorf("reading Murmur's ini: %w", err)
		}
	}
	tablePrefix := *prefix
	if tablePrefix == "" && ini != nil {
		tablePrefix = ini["dbprefix"]
	}
	dir, err := resolveDataDir(*configPath, *dataDir)
	if err != nil {
		return err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}

	db, err := openMurmurDB(dbPath)
	if err != nil {
		return fmt.Errorf("opening Murmur's database %s: %w", dbPath, err)
	}
	m, err := readMurmur(db, tablePrefix, *server)
	db.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", dbPath, err)
	}
	if m.channels[0] == nil {
		return fmt.Errorf("%s: %w", dbPath, errNoRoot)
	}
	set := murmurSettings{db: m.config, ini: ini, sid: *server}
	r := &importReport{}

	// The certificate files are checked before anything is written.
	cert, key := m.config["certificate"], m.config["key"]
	writeCert := false
	switch {
	case cert == "" || key == "":
		if c, k := ini["sslcert"], ini["sslkey"]; c != "" && k != "" {
			r.certificate = fmt.Sprintf("Murmur's ini names the certificate %s and key %s; the configuration uses them (copy them where Plenum can read them)", c, k)
		} else {
			r.certificate = "Murmur's database holds no certificate; Plenum generates its own (clients will be asked to accept it)"
		}
	case m.config["passphrase"] != "":
		r.certificate = "Murmur's certificate key is protected by a passphrase, which Plenum does not support; Plenum generates its own certificate"
	default:
		if _, err := tls.X509KeyPair([]byte(cert), []byte(key)); err != nil {
			r.certificate = fmt.Sprintf("Murmur's certificate cannot be used (%v); Plenum generates its own", err)
			break
		}
		for _, f := range []struct{ name, data string }{{murmurCertFile, cert}, {murmurKeyFile, key}} {
			old, err := os.ReadFile(filepath.Join(dir, f.name))
			if err == nil && !bytes.Equal(old, []byte(f.data)) && !*force {
				return fmt.Errorf("%s exists with other contents; add -force to replace it", filepath.Join(dir, f.name))
			}
		}
		writeCert = true
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(dir, "plenum.db"))
	if err != nil {
		return err
	}
	defer st.Close()

	// Users first: the configuration names only users that Plenum knows.
	names, err := importUsers(st, m, r)
	if err != nil {
		return err
	}
	cfg, err := convertMurmur(m, set, names, r)
	if err != nil {
		return fmt.Errorf("%s: %w", dbPath, err)
	}
	cfg.Server.DataDir = dir
	if writeCert {
		cfg.Server.Certificate = filepath.Join(dir, murmurCertFile)
		cfg.Server.Key = filepath.Join(dir, murmurKeyFile)
		r.certificate = fmt.Sprintf("Murmur's certificate and key were written to %s and %s, so clients see the same server", cfg.Server.Certificate, cfg.Server.Key)
	} else if c, k := ini["sslcert"], ini["sslkey"]; (cert == "" || key == "") && c != "" && k != "" {
		cfg.Server.Certificate, cfg.Server.Key = c, k
	}
	if _, err := conf.Encode(cfg); err != nil {
		return fmt.Errorf("the converted configuration does not validate (please report this):\n%w", err)
	}
	if err := importBans(st, m, r); err != nil {
		return err
	}
	if writeCert {
		for _, f := range []struct{ name, data string }{{murmurCertFile, cert}, {murmurKeyFile, key}} {
			if err := writeFileSync(filepath.Join(dir, f.name), []byte(f.data)); err != nil {
				return err
			}
		}
	}
	if err := conf.WriteFile(*out, cfg); err != nil {
		return err
	}
	printImportSummary(stdout, dbPath, *server, *out, dir, r)
	return nil
}

// importUsers registers Murmur's users that have a certificate hash and
// returns the Plenum names of the Murmur user ids Plenum knows afterwards
// (with 0, SuperUser). Running the import again finds users registered by
// the first run (same name and certificate) and counts them as present.
func importUsers(st *store.Store, m *murmurDB, r *importReport) (map[int64]string, error) {
	names := map[int64]string{0: store.SuperUserName}
	ids := make([]int64, 0, len(m.users))
	for id := range m.users {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	takenName := map[string]bool{foldKey(store.SuperUserName): true}
	takenCert := map[string]bool{}
	for _, id := range ids {
		u := m.users[id]
		if id == 0 {
			continue // SuperUser exists in every Plenum store
		}
		skip := func(format string, args ...any) {
			r.usersSkipped = append(r.usersSkipped, fmt.Sprintf("%q (Murmur id %d): %s", u.name, id, fmt.Sprintf(format, args...)))
		}
		switch {
		case u.hash == "" && u.password:
			skip("no certificate, only a password; Plenum identifies registered users by certificate and cannot carry Murmur's password hash over, so they must register again")
			continue
		case u.hash == "":
			skip("no certificate hash; Plenum identifies registered users by certificate")
			continue
		case len(u.hash) != 40 || strings.Trim(u.hash, "0123456789abcdef") != "":
			skip("certificate hash %q is not 40 hex digits", u.hash)
			continue
		}
		if p := userNameProblem(u.name); p != "" {
			skip("%s", p)
			continue
		}
		key := foldKey(u.name)
		if takenName[key] || takenCert[u.hash] {
			skip("another Murmur user with the same name (ignoring case) or certificate was imported first")
			continue
		}
		byCert, errCert := st.UserByCert(u.hash)
		byName, errName := st.UserByName(u.name)
		for _, err := range []error{errCert, errName} {
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
		}
		switch {
		case errCert == nil && strings.EqualFold(byCert.Name, u.name):
			names[id] = byCert.Name
			r.usersPresent = append(r.usersPresent, byCert.Name)
		case errCert == nil:
			skip("its certificate is already registered in Plenum as %q", byCert.Name)
		case errName == nil:
			skip("the name is already registered in Plenum (as %q) with another certificate", byName.Name)
		default:
			nu, err := st.Register(u.name, u.hash)
			if err != nil {
				if errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrNameTaken) || errors.Is(err, store.ErrCertTaken) {
					skip("%v", err)
					continue
				}
				return nil, err
			}
			if u.comment != "" {
				if err := st.SetComment(nu.ID, u.comment); err != nil {
					return nil, err
				}
			}
			if len(u.texture) > 0 {
				if err := st.SetTexture(nu.ID, u.texture); err != nil {
					return nil, err
				}
			}
			names[id] = nu.Name
			r.usersImported = append(r.usersImported, nu.Name)
			if u.password {
				r.passwordUsers = append(r.passwordUsers, nu.Name)
			}
		}
		if _, ok := names[id]; ok {
			takenName[key] = true
			takenCert[u.hash] = true
		}
	}
	return names, nil
}

// importBans adds Murmur's bans to the store, leaving out expired ones and
// those the store already has (same address prefix and certificate hash).
// A ban keeps everything Murmur stored: address and mask, start, duration,
// reason, and the name and certificate hash, which Murmur's kick-ban
// records even for unregistered users (Plenum's does not); the summary
// counts those, so the admin can clear them in the ban editor.
func importBans(st *store.Store, m *murmurDB, r *importReport) error {
	existing, err := st.Bans()
	if err != nil {
		return err
	}
	type key struct {
		prefix string
		hash   string
	}
	have := map[key]bool{}
	for _, b := range existing {
		have[key{b.Prefix.String(), b.CertHash}] = true
	}
	now := time.Now()
	for i, mb := range m.bans {
		start := strings.TrimSpace(mb.start)
		// Qt writes "2006-01-02T15:04:05" (maybe with milliseconds); a
		// value written by other tools may have a space instead of the T.
		if len(start) > 10 && start[10] == ' ' {
			start = start[:10] + "T" + start[11:]
		}
		mask, duration := mb.mask, mb.duration
		if mask < 0 || mask > 128 {
			mask = 0 // BanFromWire refuses it with a message
		}
		if duration < 0 || duration > 1<<32-1 {
			duration = 0
		}
		b, err := store.BanFromWire(mb.base, uint32(mask), mb.name, mb.hash, mb.reason, start, uint32(duration))
		if err != nil {
			r.bansInvalid = append(r.bansInvalid, fmt.Sprintf("ban %d (name %q): %v", i+1, mb.name, err))
			continue
		}
		if b.Expired(now) {
			r.bansExpired++
			continue
		}
		k := key{b.Prefix.String(), b.CertHash}
		if have[k] {
			r.bansPresent++
			continue
		}
		if err := st.AddBan(b); err != nil {
			if errors.Is(err, store.ErrInvalid) {
				r.bansInvalid = append(r.bansInvalid, fmt.Sprintf("ban %d (name %q): %v", i+1, mb.name, err))
				continue
			}
			return err
		}
		have[k] = true
		r.bansImported++
		if b.Name != "" || b.CertHash != "" {
			r.bansNamed++
		}
	}
	return nil
}

// writeFileSync writes a private file and fsyncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func printImportSummary(w io.Writer, dbPath string, server int64, out, dir string, r *importReport) {
	fmt.Fprintf(w, "Imported Murmur server %d from %s\n", server, dbPath)
	fmt.Fprintf(w, "  configuration: %s\n", out)
	fmt.Fprintf(w, "  users and bans: %s\n", filepath.Join(dir, "plenum.db"))
	fmt.Fprintf(w, "channels: %d below the root\n", r.channels)
	fmt.Fprintf(w, "groups: %d, with %d member entries (add and remove)\n", r.groups, r.members)
	fmt.Fprintf(w, "ACL entries: %d\n", r.aclEntries)
	fmt.Fprintf(w, "users: %d registered", len(r.usersImported))
	if len(r.usersPresent) > 0 {
		fmt.Fprintf(w, ", %d already registered", len(r.usersPresent))
	}
	fmt.Fprintf(w, ", %d skipped\n", len(r.usersSkipped))
	for _, s := range r.usersSkipped {
		fmt.Fprintf(w, "  skipped %s\n", s)
	}
	fmt.Fprintf(w, "bans: %d imported", r.bansImported)
	if r.bansPresent > 0 {
		fmt.Fprintf(w, ", %d already present", r.bansPresent)
	}
	fmt.Fprintf(w, ", %d expired and left out, %d invalid\n", r.bansExpired, len(r.bansInvalid))
	for _, s := range r.bansInvalid {
		fmt.Fprintf(w, "  invalid %s\n", s)
	}
	if r.bansNamed > 0 {
		fmt.Fprintf(w, "  %d imported ban(s) keep the name or certificate hash Murmur recorded (its kick-ban records both); clear them in the ban editor if they should not be kept\n", r.bansNamed)
	}
	fmt.Fprintf(w, "certificate: %s\n", r.certificate)
	if len(r.warnings) > 0 {
		fmt.Fprintf(w, "warnings:\n")
		for _, s := range r.warnings {
			fmt.Fprintf(w, "  - %s\n", s)
		}
	}
	fmt.Fprintf(w, "next steps:\n")
	fmt.Fprintf(w, "  - set SuperUser's password: plenum supw -data %s PASSWORD (Murmur's password hashes cannot be carried over)\n", dir)
	if len(r.passwordUsers) > 0 {
		fmt.Fprintf(w, "  - %s had a password as well as a certificate; Plenum logs them in by certificate only\n", strings.Join(quoteAll(r.passwordUsers), ", "))
	}
	fmt.Fprintf(w, "  - check the result: plenum check %s\n", out)
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}
