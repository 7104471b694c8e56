package conf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Encode returns c as a TOML file that Parse reads back to an equal
// configuration. It writes what a person would: [server] first with only
// the keys that differ from DefaultServer, then the root channel's
// [groups.NAME] and [[acl]] tables, then the channel tree as nested
// [[channel]] tables in order, each with its keys, its [channel.groups.NAME]
// and [[channel.acl]] tables and then its subchannels. Keys at their default
// (empty strings and lists, zero numbers, false) are left out; the optional
// flags (inherit_acl, apply_here...) are written whenever they are set, even
// to their default, so that the file says what the admin said.
//
// Comments of the file c came from cannot be kept; the output starts with a
// comment saying that Plenum wrote it and that the previous version is in
// FILE.bak (the name of c.File, as WriteFile keeps it). Encode fails if c
// does not validate.
func Encode(c *Config) ([]byte, error) {
	bak := "FILE.bak"
	if c.File != "" {
		bak = filepath.Base(c.File) + ".bak"
	}
	return encode(c, bak)
}

func encode(c *Config, bak string) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	w := &tomlWriter{}
	w.printf("# Plenum configuration, written by Plenum (after an edit from a Mumble\n")
	w.printf("# client's channel or ACL editor, or by plenum import-murmur).\n")
	w.printf("# Comments cannot be kept when Plenum writes the file. A previous\n")
	w.printf("# version, if there was one, is in %s.\n", bak)
	w.printf("# Keys left out have their default value, as\n")
	w.printf("# `plenum -print-default-config` shows and explains.\n")

	w.printf("\n[server]\n")
	w.settings(reflect.ValueOf(c.Server), reflect.ValueOf(DefaultServer()))
	if c.Cluster.Enabled() {
		w.printf("\n[cluster]\n")
		w.settings(reflect.ValueOf(c.Cluster), reflect.ValueOf(Cluster{}))
	}

	w.apiTokens(c.AdminTokens)
	w.auth(c.Auth)
	w.groups("", "groups", c.Groups)
	w.acl("", "acl", c.ACL)
	for i := range c.Channels {
		w.channel(&c.Channels[i], 0)
	}
	data := []byte(w.b.String())
	// Belt and braces: never hand out a file Plenum would refuse to load.
	if _, err := Parse(data, "encoded"); err != nil {
		return nil, fmt.Errorf("conf: Encode produced a file that does not parse (a bug): %w", err)
	}
	return data, nil
}

type tomlWriter struct{ b strings.Builder }

// settings writes the keys of a table of settings ([server], [cluster])
// whose value differs from its default dv.
func (w *tomlWriter) settings(sv, dv reflect.Value) {
	st := sv.Type()
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		v := sv.Field(i)
		if list, ok := v.Interface().([]string); ok {
			w.strings("", name, list) // lists default to empty
			continue
		}
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				continue
			}
			v = v.Elem()
		} else if reflect.DeepEqual(v.Interface(), dv.Field(i).Interface()) {
			continue
		}
		w.key("", name, scalar(v))
	}
}

func (w *tomlWriter) printf(format string, args ...any) { fmt.Fprintf(&w.b, format, args...) }

func (w *tomlWriter) key(indent, name, value string) {
	w.b.WriteString(indent + tomlKey(name) + " = " + value + "\n")
}

func (w *tomlWriter) strings(indent, name string, list []string) {
	if len(list) == 0 {
		return
	}
	quoted := make([]string, len(list))
	for i, s := range list {
		quoted[i] = tomlString(s)
	}
	one := strings.Join(quoted, ", ")
	if len(indent)+len(name)+len(one) <= 72 && !strings.Contains(one, "\n") {
		w.key(indent, name, "["+one+"]")
		return
	}
	w.b.WriteString(indent + tomlKey(name) + " = [\n")
	for _, q := range quoted {
		w.b.WriteString(indent + "  " + q + ",\n")
	}
	w.b.WriteString(indent + "]\n")
}

func (w *tomlWriter) flag(indent, name string, b *bool) {
	if b != nil {
		w.key(indent, name, strconv.FormatBool(*b))
	}
}

// groups writes [TABLE.NAME] tables, sorted by name.
func (w *tomlWriter) groups(indent, table string, groups map[string]*Group) {
	for _, name := range sortedKeys(groups) {
		g := groups[name]
		if g == nil {
			g = &Group{}
		}
		w.printf("\n%s[%s.%s]\n", indent, table, tomlKey(name))
		w.flag(indent, "inherit", g.Inherit)
		w.flag(indent, "inheritable", g.Inheritable)
		w.strings(indent, "add", g.Add)
		w.strings(indent, "remove", g.Remove)
	}
}

// acl writes [[TABLE]] tables in order.
func (w *tomlWriter) acl(indent, table string, entries []ACLEntry) {
	for i := range entries {
		e := &entries[i]
		w.printf("\n%s[[%s]]\n", indent, table)
		if e.User != "" {
			w.key(indent, "user", tomlString(e.User))
		}
		if e.Group != "" {
			w.key(indent, "group", tomlString(e.Group))
		}
		w.flag(indent, "apply_here", e.ApplyHere)
		w.flag(indent, "apply_subs", e.ApplySubs)
		w.strings(indent, "allow", e.Allow)
		w.strings(indent, "deny", e.Deny)
	}
}

func (w *tomlWriter) channel(ch *Channel, depth int) {
	indent := strings.Repeat("  ", depth)
	table := strings.Repeat("channel.", depth) + "channel"
	w.printf("\n%s[[%s]]\n", indent, table)
	w.key(indent, "name", tomlString(ch.Name))
	if ch.Description != "" {
		w.key(indent, "description", tomlString(ch.Description))
	}
	if ch.Position != 0 {
		w.key(indent, "position", strconv.FormatInt(int64(ch.Position), 10))
	}
	if ch.MaxUsers != 0 {
		w.key(indent, "max_users", strconv.FormatUint(uint64(ch.MaxUsers), 10))
	}
	if ch.Temporary {
		w.key(indent, "temporary", "true")
	}
	if ch.MaxSpeakers != 0 {
		w.key(indent, "max_speakers", strconv.Itoa(ch.MaxSpeakers))
	}
	if ch.Mix {
		w.key(indent, "mix", "true")
	}
	if ch.MixAbove != 0 {
		w.key(indent, "mix_above", strconv.Itoa(ch.MixAbove))
	}
	if ch.Record {
		w.key(indent, "record", "true")
	}
	if ch.Floor {
		w.key(indent, "floor", "true")
	}
	w.strings(indent, "floor_groups", ch.FloorGroups)
	if ch.FloorRequests != "" {
		w.key(indent, "floor_requests", tomlString(ch.FloorRequests))
	}
	if ch.SpeakingTime.Duration != 0 {
		w.key(indent, "speaking_time", tomlString(ch.SpeakingTime.String()))
	}
	if ch.FloorMinutes {
		w.key(indent, "floor_minutes", "true")
	}
	w.flag(indent, "inherit_acl", ch.InheritACL)
	w.strings(indent, "links", ch.Links)
	// A channel's own tables are indented like its subchannels, so that
	// they read as part of it.
	w.groups(indent+"  ", table+".groups", ch.Groups)
	w.acl(indent+"  ", table+".acl", ch.ACL)
	for i := range ch.Children {
		w.channel(&ch.Children[i], depth+1)
	}
}

// scalar formats a [server] value.
func scalar(v reflect.Value) string {
	if d, ok := v.Interface().(Duration); ok {
		return tomlString(d.Duration.String())
	}
	switch v.Kind() {
	case reflect.String:
		return tomlString(v.String())
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	}
	panic("conf: no TOML encoding for " + v.Type().String()) // a new [server] field type; TestEncodeEveryField catches it
}

// tomlKey returns name as a bare key if it can be one, else quoted.
func tomlKey(name string) string {
	if name == "" {
		return `""`
	}
	for i := 0; i < len(name); i++ {
		if !isBare(name[i]) {
			return basicString(name)
		}
	}
	return name
}

// tomlString quotes s: a literal string ('...') when it has backslashes and
// can be one (patterns read better that way), a multi-line string when it
// has line breaks, else a basic string.
func tomlString(s string) string {
	if strings.Contains(s, "\n") {
		return multiLineString(s)
	}
	if strings.Contains(s, `\`) && !strings.ContainsRune(s, '\'') && !hasControl(s, false) {
		return "'" + s + "'"
	}
	return basicString(s)
}

func hasControl(s string, allowNewline bool) bool {
	for _, r := range s {
		if (r < 0x20 && r != '\t' && !(allowNewline && r == '\n')) || r == 0x7f {
			return true
		}
	}
	return false
}

func basicString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	escape(&b, s, false)
	b.WriteByte('"')
	return b.String()
}

// multiLineString writes s as """...""" starting on a new line (a newline
// right after the opening quotes is not part of the value).
func multiLineString(s string) string {
	var b strings.Builder
	b.WriteString("\"\"\"\n")
	escape(&b, s, true)
	b.WriteString(`"""`)
	return b.String()
}

func escape(b *strings.Builder, s string, multiLine bool) {
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n' && multiLine:
			b.WriteByte('\n')
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteByte('\t')
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(b, `\u%04X`, r)
		case r == utf8.RuneError:
			b.WriteString(`\uFFFD`)
		default:
			b.WriteRune(r)
		}
	}
}

// WriteFile writes c to path atomically, keeping the previous file as
// path+".bak": at every instant path holds either the complete old or the
// complete new file, so readers (and a crash) never see a partial one.
//
// It encodes c (see Encode; an invalid c is refused before anything is
// touched), writes a temporary file in the same directory and fsyncs it,
// makes path+".bak" a hard link to the current file (a copy where hard links
// are not possible) by way of a temporary name and a rename, renames the
// temporary file over path and fsyncs the directory. A new file gets the
// mode 0600 (a configuration may hold the server password); an existing
// one keeps its mode. If path is a symbolic link, the file it points to is
// replaced. On error path is untouched and temporary files are removed.
//
// Concurrent calls for the same path must be serialized by the caller.
func WriteFile(path string, c *Config) (err error) {
	fail := func(err error) error { return &Error{File: path, Msg: err.Error(), Err: err} }
	target := path
	if t, err := filepath.EvalSymlinks(path); err == nil {
		target = t
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fail(err)
	}
	data, err := encode(c, filepath.Base(path)+".bak")
	if err != nil {
		return err
	}
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	perm := fs.FileMode(0o600)
	old, err := os.Stat(target)
	exists := err == nil
	switch {
	case exists && !old.Mode().IsRegular():
		return fail(fmt.Errorf("not a regular file"))
	case exists:
		perm = old.Mode().Perm()
	case !errors.Is(err, fs.ErrNotExist):
		return fail(err)
	}

	tmp, err := writeTemp(dir, "."+base+".*.tmp", perm, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if exists {
		if err := backup(target, target+".bak", perm); err != nil {
			return fail(fmt.Errorf("keeping the previous version: %w", err))
		}
	}
	if err := os.Rename(tmp, target); err != nil {
		return fail(err)
	}
	if err := syncDir(dir); err != nil {
		return fail(fmt.Errorf("written, but syncing the directory failed: %w", err))
	}
	return nil
}

// RemoveStaleTemps removes the temporary files that WriteFile leaves beside
// path (and beside path.bak) when the process is killed in the middle of a
// write, and returns their names. Call it before writing starts: a write
// in progress would lose its temporary file.
func RemoveStaleTemps(path string) ([]string, error) {
	if t, err := filepath.EvalSymlinks(path); err == nil {
		path = t // WriteFile writes beside the file a link points to
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		name := e.Name()
		middle, ok := strings.CutPrefix(name, "."+base+".")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		middle, ok = strings.CutSuffix(middle, ".tmp")
		middle = strings.TrimPrefix(middle, "bak.")
		if !ok || middle == "" || strings.Trim(middle, "0123456789") != "" {
			continue // not a name os.CreateTemp gave for WriteFile
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return removed, err
		}
		removed = append(removed, name)
	}
	return removed, nil
}

// writeTemp creates a temporary file in dir, fills it with fill, sets its
// mode, fsyncs and closes it, and returns its name; on error it removes it.
func writeTemp(dir, pattern string, perm fs.FileMode, fill func(*os.File) error) (name string, err error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := fill(f); err != nil {
		return "", err
	}
	if err := f.Chmod(perm); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// backup makes dst a copy of src (a hard link where possible), replacing
// dst atomically.
func backup(src, dst string, perm fs.FileMode) error {
	dir, base := filepath.Split(dst)
	if dir == "" {
		dir = "."
	}
	// Reserve a unique name, then put the link there (os.Link does not
	// replace existing files).
	tmp, err := writeTemp(dir, "."+base+".*.tmp", perm, func(*os.File) error { return nil })
	if err != nil {
		return err
	}
	os.Remove(tmp)
	if err := os.Link(src, tmp); err != nil {
		tmp, err = writeTemp(dir, "."+base+".*.tmp", perm, func(f *os.File) error {
			in, err := os.Open(src)
			if err != nil {
				return err
			}
			defer in.Close()
			_, err = io.Copy(f, in)
			return err
		})
		if err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
