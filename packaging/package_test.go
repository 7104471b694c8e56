package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/plenum-voice/plenum/conf"
)

// TestPackagedConfigIsTheDefault: /etc/plenum/plenum.toml is the commented
// embedded default, loads, and differs from it only in data_dir.
func TestPackagedConfigIsTheDefault(t *testing.T) {
	data, err := packagedConfig()
	if err != nil {
		t.Fatal(err)
	}
	load := func(data []byte) *conf.Config {
		t.Helper()
		path := filepath.Join(t.TempDir(), "plenum.toml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := conf.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		c.File = ""
		return c
	}
	got, want := load(data), load(conf.DefaultTOML())
	if got.Server.DataDir != dataDir {
		t.Errorf("data_dir = %q, want %q", got.Server.DataDir, dataDir)
	}
	want.Server.DataDir = dataDir
	// What the files say, not on which line: the server's encoding of each.
	gotTOML, err1 := conf.Encode(got)
	wantTOML, err2 := conf.Encode(want)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if !bytes.Equal(gotTOML, wantTOML) {
		t.Errorf("the packaged configuration differs from the default in more than data_dir:\n%s", gotTOML)
	}
	for _, comment := range []string{"# Plenum configuration", "# Address to listen on", "/etc/plenum/plenum.toml", "-data /var/lib/plenum"} {
		if !bytes.Contains(data, []byte(comment)) {
			t.Errorf("the packaged configuration lacks %q", comment)
		}
	}
}

// unit is plenum.service as key=value pairs, a key set more than once
// holding all its values.
func unit(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("plenum.service")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	return keys
}

// TestUnitRunsWhatThePackageInstalls: the unit starts the binary the
// package installs, on its conffile, in the directory systemd makes for
// it, as the user postinst creates; it is a notify service that reloads
// with SIGHUP and may write only its two directories.
func TestUnitRunsWhatThePackageInstalls(t *testing.T) {
	u := unit(t)
	want := map[string]string{
		"ExecStart":       binaryPath + " -config " + configPath + " -data " + dataDir,
		"ExecReload":      `/bin/sh -c "kill -HUP ${MAINPID}"`,
		"Type":            "notify",
		"User":            "plenum",
		"StateDirectory":  filepath.Base(dataDir),
		"ReadWritePaths":  filepath.Dir(configPath),
		"ProtectSystem":   "strict",
		"NoNewPrivileges": "yes",
		// No capability at all: ports below 1024 are a drop-in away
		// (README.Debian).
		"CapabilityBoundingSet": "",
		"AmbientCapabilities":   "",
	}
	for k, v := range want {
		if got := u[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	postinst, err := os.ReadFile("postinst")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(postinst, []byte("adduser --system --group --quiet --home "+dataDir+" --no-create-home plenum")) {
		t.Error("postinst does not create the user plenum.service runs as")
	}
}

// TestMaintainerScriptsParse: the shell accepts each maintainer script.
func TestMaintainerScriptsParse(t *testing.T) {
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if out, err := exec.Command("sh", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", s, err, out)
		}
		if fi, err := os.Stat(s); err != nil || fi.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s is not executable (%v)", s, err)
		}
	}
}

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is missing (Debian's systemd package has it): the unit is not checked")
	}
	return path
}

// TestUnitVerifies: systemd-analyze verify finds nothing to say about the
// unit. The binary is not installed here, so a copy of the unit names an
// executable that is (TestUnitRunsWhatThePackageInstalls checks the real
// path).
func TestUnitVerifies(t *testing.T) {
	analyze := systemdAnalyze(t)
	data, err := os.ReadFile("plenum.service")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "plenum.service")
	if err := os.WriteFile(copyPath, bytes.Replace(data, []byte("ExecStart="+binaryPath), []byte("ExecStart="+self), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// maxExposure is the exposure systemd-analyze security may give the unit
// at most (0 is best, 10 worst; below 2 is "OK"). It measured 1.2 with
// systemd 252: what is left is the network, which a server needs, and
// settings that would stand in the way of a port below 1024.
const maxExposure = 1.5

// TestUnitSecurity: systemd-analyze security rates the unit's sandbox
// "OK" and no worse than maxExposure.
func TestUnitSecurity(t *testing.T) {
	analyze := systemdAnalyze(t)
	out, err := exec.Command(analyze, "security", "--offline=yes", "--no-pager", "./plenum.service").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for plenum\.service: ([0-9.]+) (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security: exposure %.1f %s", score, m[2])
	if score > maxExposure {
		t.Errorf("exposure %.1f, want at most %.1f:\n%s", score, maxExposure, out)
	}
}

// TestRefusesWhatIsNotAPackage: a version Debian would not take, and a
// binary for another architecture, are refused.
func TestRefusesWhatIsNotAPackage(t *testing.T) {
	amd64, arm64 := standIn(t, elf.EM_X86_64), standIn(t, elf.EM_AARCH64)
	for _, o := range []options{
		{version: "v1.0", arch: "amd64", binary: amd64},
		{version: "1.0 beta", arch: "amd64", binary: amd64},
		{version: "1.0", arch: "riscv64", binary: amd64},
		{version: "1.0", arch: "arm64", binary: amd64},
		{version: "1.0", arch: "amd64", binary: arm64},
		{version: "1.0", arch: "amd64", binary: "package_test.go"},
	} {
		o.root, o.out = "..", t.TempDir()
		if path, err := build(o); err == nil {
			t.Errorf("%+v: built %s", o, path)
		}
	}
}

// TestPackage builds a package for each architecture around a stand-in
// binary and reads it back with dpkg-deb: the files are where the unit and
// the README say, the configuration is a conffile, nothing is in
// /var/lib/plenum, the maintainer scripts and dependencies are there.
func TestPackage(t *testing.T) {
	dpkgDeb, err := exec.LookPath("dpkg-deb")
	if err != nil {
		t.Skip("dpkg-deb is missing: the package is not read back")
	}
	for arch, machine := range elfMachines {
		t.Run(arch, func(t *testing.T) { testPackage(t, dpkgDeb, arch, standIn(t, machine)) })
	}
}

func testPackage(t *testing.T, dpkgDeb, arch, binaryFile string) {
	t.Setenv("SOURCE_DATE_EPOCH", "1764979200")
	path, err := build(options{version: "1.2.3~test4", arch: arch, binary: binaryFile, root: "..", out: t.TempDir(), maintainer: "Test <test@invalid>"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "plenum_1.2.3~test4_" + arch + ".deb"; filepath.Base(path) != want {
		t.Errorf("package named %s, want %s", filepath.Base(path), want)
	}
	dpkg := func(option string, fields ...string) []byte {
		t.Helper()
		out, err := exec.Command(dpkgDeb, append([]string{option, path}, fields...)...).Output()
		if err != nil {
			t.Fatalf("dpkg-deb %s %v: %v", option, fields, err)
		}
		return out
	}

	fields := map[string]string{
		"Package": "plenum", "Version": "1.2.3~test4", "Architecture": arch,
		"Depends": strings.Join(depends, ", "), "Recommends": "ca-certificates", "Section": "net",
	}
	for k, v := range fields {
		if got := strings.TrimSpace(string(dpkg("--field", k))); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if !strings.Contains(strings.Join(depends, ","), "libopus0") || !strings.Contains(strings.Join(depends, ","), "libopusfile0") {
		t.Error("the package does not depend on libopus")
	}

	control := tarFiles(t, dpkg("--ctrl-tarfile"))
	if got := strings.TrimSpace(string(control["/conffiles"].data)); got != configPath {
		t.Errorf("conffiles: %q, want %q", got, configPath)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		script, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		f, ok := control["/"+s]
		if !ok || !bytes.Equal(f.data, script) || f.mode&0o111 == 0 {
			t.Errorf("control has no executable %s as in packaging/%s", s, s)
		}
	}

	data := tarFiles(t, dpkg("--fsys-tarfile"))
	cfg, err := packagedConfig()
	if err != nil {
		t.Fatal(err)
	}
	unitFile, _ := os.ReadFile("plenum.service")
	binary, _ := os.ReadFile(binaryFile)
	readme, _ := os.ReadFile("../README.md")
	for p, want := range map[string]struct {
		data []byte
		mode int64
	}{
		binaryPath:                              {binary, 0o755},
		configPath:                              {cfg, 0o640},
		unitPath:                                {unitFile, 0o644},
		docDir + "/README.md":                   {readme, 0o644},
		docDir + "/README.Debian":               {nil, 0o644},
		docDir + "/docs/SECURITY.md":            {nil, 0o644},
		docDir + "/examples/plenary-floor.toml": {nil, 0o644},
	} {
		f, ok := data[p]
		switch {
		case !ok:
			t.Errorf("the package has no %s", p)
		case f.mode != want.mode:
			t.Errorf("%s has mode %o, want %o", p, f.mode, want.mode)
		case want.data != nil && !bytes.Equal(f.data, want.data):
			t.Errorf("%s is not what it should be", p)
		case f.uid != 0 || f.gid != 0:
			t.Errorf("%s belongs to %d:%d, want root", p, f.uid, f.gid)
		}
	}
	for p := range data {
		if p == dataDir || strings.HasPrefix(p, dataDir+"/") || strings.HasPrefix(p, "/var/") {
			t.Errorf("the package ships %s; systemd makes the data directory on first start", p)
		}
	}
}

// standIn writes the smallest ELF executable header for machine: what
// the packager checks of a binary, without packing a real one.
func standIn(t *testing.T, machine elf.Machine) string {
	t.Helper()
	h := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(machine), Version: uint32(elf.EV_CURRENT),
		Ehsize: 64, Phentsize: 56, Shentsize: 64,
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, h); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "plenum")
	if err := os.WriteFile(path, buf.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

type tarFile struct {
	data     []byte
	mode     int64
	uid, gid int
}

// tarFiles reads a tar archive into its regular files by absolute path.
func tarFiles(t *testing.T, archive []byte) map[string]tarFile {
	t.Helper()
	files := map[string]tarFile{}
	r := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		name := "/" + strings.TrimPrefix(h.Name, "./")
		files[name] = tarFile{data: data, mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid}
	}
}
