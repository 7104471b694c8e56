// Command packaging builds Plenum's Debian package, with nfpm as a
// library (github.com/goreleaser/nfpm/v2; no other packaging toolchain):
//
//	go run ./packaging -version 0.1.0 -arch amd64 -binary bin/plenum -out dist
//
// scripts/package builds the binary, works out the version from git and
// runs this. The package installs the server, its configuration as a
// conffile, the systemd unit and the documentation, and depends on the
// Opus libraries the binary links; the maintainer scripts beside this file
// create the service user and look after the unit. Nothing goes into
// /var/lib/plenum: systemd makes it on first start (StateDirectory=).
package main

import (
	"bytes"
	"debug/elf"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/plenum-voice/plenum/conf"
)

// Where the package puts things; plenum.service names the same paths.
const (
	binaryPath = "/usr/bin/plenum"
	configPath = "/etc/plenum/plenum.toml"
	unitPath   = "/lib/systemd/system/plenum.service"
	docDir     = "/usr/share/doc/plenum"
	dataDir    = "/var/lib/plenum"
)

// depends are the runtime dependencies: what dpkg-shlibdeps derives from
// the binary (libc, libopus, libopusfile; scripts/package checks that it
// still does) and adduser for the service user.
var depends = []string{"libc6 (>= 2.34)", "libopus0 (>= 1.1)", "libopusfile0 (>= 0.5)", "adduser"}

// recommends: the system's certificate authorities, with which the
// server checks the ACME service (acme_domain) and sign-in providers
// ([auth.oidc], [auth.webhook] over HTTPS). Without them those features
// fail; everything else runs.
var recommends = []string{"ca-certificates"}

// elfMachines maps the Debian architectures the package may be built for
// to the machine their binary must be for.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

func main() {
	var o options
	flag.StringVar(&o.version, "version", "", "Debian `version` of the package, e.g. 0.1.0 or 0.0~git20261205120000.abc1234 (required)")
	flag.StringVar(&o.arch, "arch", "amd64", "Debian `architecture`: amd64 or arm64 (the binary's)")
	flag.StringVar(&o.binary, "binary", "bin/plenum", "the server `binary` to package")
	flag.StringVar(&o.root, "root", ".", "the repository's `directory` (unit, scripts, documentation)")
	flag.StringVar(&o.out, "out", "dist", "`directory` to write plenum_VERSION_ARCH.deb to")
	flag.StringVar(&o.maintainer, "maintainer", "Plenum developers <plenum@invalid>", "the package's Maintainer field")
	flag.Parse()
	path, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "packaging:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}

type options struct {
	version, arch, binary, root, out, maintainer string
}

// debVersion is what a Debian version may look like (deb-version(7)),
// without an epoch: a digit first, then letters, digits and . + ~ -.
var debVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`)

// build writes the package and returns its path.
func build(o options) (string, error) {
	if !debVersion.MatchString(o.version) {
		return "", fmt.Errorf("version %q is not a Debian version (a digit first, then letters, digits and . + ~ -)", o.version)
	}
	if err := checkBinary(o.binary, o.arch); err != nil {
		return "", err
	}
	stage, err := os.MkdirTemp("", "plenum-package-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	cfg, err := packagedConfig()
	if err != nil {
		return "", err
	}
	cfgFile := filepath.Join(stage, "plenum.toml")
	if err := os.WriteFile(cfgFile, cfg, 0o640); err != nil {
		return "", err
	}
	info := packageInfo(o, cfgFile)
	packager := deb.Default
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(o.out, packager.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := packager.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("nfpm: %w", err)
	}
	return path, f.Close()
}

// checkBinary refuses a binary built for another machine than arch.
func checkBinary(path, arch string) error {
	want, ok := elfMachines[arch]
	if !ok {
		return fmt.Errorf("architecture %q: only amd64 and arm64 are built", arch)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("the server binary: %w", err)
	}
	defer f.Close()
	if f.Machine != want {
		return fmt.Errorf("%s is built for %v, not %s", path, f.Machine, arch)
	}
	return nil
}

// packageInfo is what nfpm needs to know about the package.
func packageInfo(o options, cfgFile string) *nfpm.Info {
	src := func(p string) string { return filepath.Join(o.root, p) }
	file := func(from, to string, mode os.FileMode) *files.Content {
		return &files.Content{Source: from, Destination: to, FileInfo: &files.ContentFileInfo{Mode: mode}}
	}
	contents := files.Contents{
		file(o.binary, binaryPath, 0o755),
		// A conffile: dpkg keeps the admin's edits (and the server's
		// write-backs) on upgrade and removes it on purge. The
		// maintainer scripts give it and /etc/plenum to the group plenum.
		{Source: cfgFile, Destination: configPath, Type: files.TypeConfig, FileInfo: &files.ContentFileInfo{Mode: 0o640}},
		{Destination: filepath.Dir(configPath), Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o750}},
		file(src("packaging/plenum.service"), unitPath, 0o644),
		file(src("packaging/README.Debian"), docDir+"/README.Debian", 0o644),
		file(src("README.md"), docDir+"/README.md", 0o644),
	}
	for _, doc := range []string{"SECURITY.md", "FLOOR.md", "STAGE.md", "WEB.md"} {
		contents = append(contents, file(src("docs/"+doc), docDir+"/docs/"+doc, 0o644))
	}
	for _, ex := range []string{"minimal.toml", "plenary.toml", "plenary-floor.toml"} {
		contents = append(contents, file(src("conf/examples/"+ex), docDir+"/examples/"+ex, 0o644))
	}
	info := &nfpm.Info{
		Name:          "plenum",
		Arch:          o.arch,
		Platform:      "linux",
		Version:       o.version,
		VersionSchema: "none", // the version is already Debian's
		Section:       "net",
		Priority:      "optional",
		Maintainer:    o.maintainer,
		Homepage:      "https://github.com/plenum-voice/plenum",
		Description: "Mumble-compatible voice server for large plenaries\n" +
			"Plenum speaks the Mumble protocol, so people join with the Mumble clients\n" +
			"they have, and is built for 100 to 1000+ people in one channel: floor\n" +
			"control, loudest-N and mixing for the moments when many talk at once,\n" +
			"and as little kept about its users as possible.\n" +
			"This package runs it as the systemd service plenum.service.",
		Overridables: nfpm.Overridables{
			Depends:    depends,
			Recommends: recommends,
			Contents:   contents,
			Scripts: nfpm.Scripts{
				PostInstall: src("packaging/postinst"),
				PreRemove:   src("packaging/prerm"),
				PostRemove:  src("packaging/postrm"),
			},
			Deb: nfpm.Deb{Compression: "xz"},
		},
	}
	return nfpm.WithDefaults(info)
}

// The data_dir paragraph of the embedded default, and what the package's
// configuration says instead.
var (
	defaultDataDir = []byte(`# Directory for Plenum's own files: the generated certificate now, the
# database later. Relative paths are relative to the working directory.
data_dir = "plenum-data"
`)
	packagedDataDir = []byte(`# Directory for Plenum's own files: the generated certificate, the
# database, the admin token and recordings. plenum.service starts the
# server with -data /var/lib/plenum, which wins over this key: systemd
# makes that directory for the service user and lets the server write
# nowhere else but /etc/plenum. The key is here for the admin commands,
# e.g. sudo -u plenum plenum supw -config /etc/plenum/plenum.toml PASSWORD
data_dir = "` + dataDir + `"
`)
	defaultIntro  = []byte("# breakout rooms. Copy it (`plenum -print-default-config > plenum.toml`),\n# edit it and start Plenum with it.\n")
	packagedIntro = []byte(`# breakout rooms. The plenum package installed it as /etc/plenum/plenum.toml
# for the service plenum.service: edit it and save, and the running server
# applies it (so does systemctl reload plenum); listen, admin_listen,
# data_dir, certificate and key take systemctl restart plenum. Upgrades of
# the package keep your edits.
`)
)

// packagedConfig is /etc/plenum/plenum.toml: the commented embedded
// default with the package's data directory.
func packagedConfig() ([]byte, error) {
	out := conf.DefaultTOML()
	for _, r := range []struct{ from, to []byte }{{defaultDataDir, packagedDataDir}, {defaultIntro, packagedIntro}} {
		if bytes.Count(out, r.from) != 1 {
			return nil, fmt.Errorf("the embedded default configuration no longer has this text once; update packaging/main.go:\n%s", r.from)
		}
		out = bytes.Replace(out, r.from, r.to, 1)
	}
	return out, nil
}
