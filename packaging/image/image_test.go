package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

var testCreated = time.Unix(1767225600, 0).UTC() // 2026-01-01

const testPEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

// fakeELF is the start of a Linux executable for arch, padded with payload.
func fakeELF(arch, payload string) []byte {
	b := make([]byte, 64)
	copy(b, "\x7fELF\x02\x01\x01")
	m := map[string]byte{"amd64": 62, "arm64": 183}[arch]
	b[18] = m
	return append(b, payload...)
}

// testSpec writes binaries for both platforms under a new directory.
func testSpec(t *testing.T) *Spec {
	t.Helper()
	dir := t.TempDir()
	for _, arch := range []string{"amd64", "arm64"} {
		if err := os.MkdirAll(filepath.Join(dir, "linux-"+arch), 0o755); err != nil {
			t.Fatal(err)
		}
		bin := fakeELF(arch, strings.Repeat("hostguard for "+arch+"\n", 1000))
		if err := os.WriteFile(filepath.Join(dir, "linux-"+arch, "hostguard"), bin, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &Spec{
		Version:  "v0.1.0",
		Name:     "localhost/hostguard",
		Source:   "https://github.com/hostguard/hostguard",
		Revision: "0123456789abcdef0123456789abcdef01234567",
		Created:  testCreated,
		BinDir:   dir,
		CACerts:  []byte(testPEM),
		CAOrigin: "test certificates",
	}
}

func writeTest(t *testing.T, s *Spec) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "image.oci.tar")
	if err := WriteArchive(s, out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReproducible(t *testing.T) {
	s := testSpec(t)
	a, b := writeTest(t, s), writeTest(t, s)
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same inputs differ")
	}
	// The inputs do count: another time, or another binary, gives another
	// archive (so that the comparison above can fail).
	later := *s
	later.Created = s.Created.Add(time.Second)
	if bytes.Equal(a, writeTest(t, &later)) {
		t.Error("SOURCE_DATE_EPOCH one second later gives the same archive")
	}
	other := testSpec(t)
	if err := os.WriteFile(filepath.Join(other.BinDir, "linux-arm64", "hostguard"), fakeELF("arm64", "changed"), 0o755); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, writeTest(t, other)) {
		t.Error("another arm64 binary gives the same archive")
	}
}

// archive is an OCI layout read from its tar.
type archive struct {
	t       *testing.T
	entries []*tar.Header
	files   map[string][]byte
}

func readArchive(t *testing.T, b []byte) *archive {
	t.Helper()
	a := &archive{t: t, files: map[string][]byte{}}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		a.entries = append(a.entries, h)
		a.files[h.Name] = data
	}
	return a
}

// blob returns the blob of d, after checking its digest and size.
func (a *archive) blob(d v1.Descriptor) []byte {
	a.t.Helper()
	b, ok := a.files["blobs/sha256/"+d.Digest.Hex]
	if !ok {
		a.t.Fatalf("no blob %s", d.Digest)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != d.Digest.Hex || int64(len(b)) != d.Size {
		a.t.Fatalf("blob %s: digest or size (%d, descriptor %d) wrong", d.Digest, len(b), d.Size)
	}
	return b
}

// checkHeaders fails unless the entries are sorted, owned by root, and
// dated created, with the modes want gives (by name).
func checkHeaders(t *testing.T, what string, hs []*tar.Header, want map[string]int64) {
	t.Helper()
	var names []string
	for _, h := range hs {
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s %s: owner %d/%d (%q/%q), want 0/0", what, h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(testCreated) {
			t.Errorf("%s %s: time %v, want %v", what, h.Name, h.ModTime, testCreated)
		}
		if m, ok := want[h.Name]; ok && h.Mode != m {
			t.Errorf("%s %s: mode %o, want %o", what, h.Name, h.Mode, m)
		}
		if len(h.PAXRecords) > 0 || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s %s: extra metadata %v %v %v", what, h.Name, h.PAXRecords, h.AccessTime, h.ChangeTime)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("%s entries not sorted: %q", what, names)
	}
	if want != nil {
		var wantNames []string
		for n := range want {
			wantNames = append(wantNames, n)
		}
		slices.Sort(wantNames)
		if !slices.Equal(names, wantNames) {
			t.Errorf("%s holds %q, want %q", what, names, wantNames)
		}
	}
}

// layerEntries decompresses a gzip layer, checking its header holds no
// name and no time, and returns its entries and files.
func layerEntries(t *testing.T, b []byte) ([]*tar.Header, map[string][]byte) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() || zr.Comment != "" || len(zr.Extra) > 0 {
		t.Errorf("gzip header carries name %q, time %v, comment %q, extra %q", zr.Name, zr.ModTime, zr.Comment, zr.Extra)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	a := readArchive(t, raw)
	return a.entries, a.files
}

func TestArchive(t *testing.T) {
	s := testSpec(t)
	a := readArchive(t, writeTest(t, s))

	modes := map[string]int64{"oci-layout": 0o644, "index.json": 0o644, "blobs/": 0o755, "blobs/sha256/": 0o755}
	checkHeaders(t, "archive", a.entries, nil)
	for _, h := range a.entries {
		if m, ok := modes[h.Name]; ok && h.Mode != m {
			t.Errorf("archive %s: mode %o, want %o", h.Name, h.Mode, m)
		}
	}
	if got := string(a.files["oci-layout"]); !strings.Contains(got, `"imageLayoutVersion": "1.0.0"`) && !strings.Contains(got, `"imageLayoutVersion":"1.0.0"`) {
		t.Errorf("oci-layout = %s", got)
	}

	top, err := v1.ParseIndexManifest(bytes.NewReader(a.files["index.json"]))
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Manifests) != 1 {
		t.Fatalf("index.json has %d descriptors, want the one index podman load takes", len(top.Manifests))
	}
	d := top.Manifests[0]
	if d.MediaType != "application/vnd.oci.image.index.v1+json" || d.Annotations[annRefName] != "localhost/hostguard:v0.1.0" {
		t.Errorf("index.json descriptor %+v, want an image index named localhost/hostguard:v0.1.0", d)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(a.blob(d)))
	if err != nil {
		t.Fatal(err)
	}
	if idx.Annotations[annVersion] != "v0.1.0" || idx.Annotations[annCreated] != "2026-01-01T00:00:00Z" {
		t.Errorf("index annotations %v", idx.Annotations)
	}
	if len(idx.Manifests) != 2 {
		t.Fatalf("index has %d images, want 2", len(idx.Manifests))
	}
	var caDigests []v1.Hash
	for i, want := range []string{"linux/amd64", "linux/arm64/v8"} {
		m := idx.Manifests[i]
		if m.Platform == nil || m.Platform.String() != want {
			t.Errorf("image %d is for %v, want %s", i, m.Platform, want)
			continue
		}
		if m.ArtifactType != "" {
			t.Errorf("%s: artifactType %q in the index, want none for an image", want, m.ArtifactType)
		}
		mf, err := v1.ParseManifest(bytes.NewReader(a.blob(m)))
		if err != nil {
			t.Fatal(err)
		}
		if mf.MediaType != "application/vnd.oci.image.manifest.v1+json" || mf.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
			t.Errorf("%s: manifest %s, config %s: want OCI media types", want, mf.MediaType, mf.Config.MediaType)
		}
		cf, err := v1.ParseConfigFile(bytes.NewReader(a.blob(mf.Config)))
		if err != nil {
			t.Fatal(err)
		}
		c := cf.Config
		if cf.OS != m.Platform.OS || cf.Architecture != m.Platform.Architecture || cf.Variant != m.Platform.Variant {
			t.Errorf("%s: config is for %s/%s/%s", want, cf.OS, cf.Architecture, cf.Variant)
		}
		if !cf.Created.Equal(testCreated) {
			t.Errorf("%s: created %v", want, cf.Created)
		}
		if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/hostguard"}) ||
			!slices.Equal(c.Cmd, []string{"proxy", "--allow", "example.com"}) || len(c.ExposedPorts) != 1 {
			t.Errorf("%s: config %+v", want, c)
		}
		if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
			t.Errorf("%s: exposes %v, want 8080/tcp", want, c.ExposedPorts)
		}
		wantLabels := map[string]string{
			annVersion: "v0.1.0", annLicenses: "Apache-2.0", annSource: s.Source, annRevision: s.Revision,
			annCreated: "2026-01-01T00:00:00Z", annTitle: "hostguard",
		}
		for k, v := range wantLabels {
			if c.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", want, k, c.Labels[k], v)
			}
		}
		if c.Labels[annDescription] == "" {
			t.Errorf("%s: no description label", want)
		}
		if len(mf.Layers) != 2 || len(cf.RootFS.DiffIDs) != 2 || len(cf.History) != 2 {
			t.Fatalf("%s: %d layers, %d diff_ids, %d history entries, want 2", want, len(mf.Layers), len(cf.RootFS.DiffIDs), len(cf.History))
		}
		caDigests = append(caDigests, mf.Layers[0].Digest)
		var files = map[string][]byte{}
		for j, l := range mf.Layers {
			if l.MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
				t.Errorf("%s layer %d: %s", want, j, l.MediaType)
			}
			b := a.blob(l)
			hs, fs := layerEntries(t, b)
			zr, _ := gzip.NewReader(bytes.NewReader(b))
			raw, _ := io.ReadAll(zr)
			if sum := sha256.Sum256(raw); "sha256:"+hex.EncodeToString(sum[:]) != cf.RootFS.DiffIDs[j].String() {
				t.Errorf("%s layer %d: diff_id %s does not match", want, j, cf.RootFS.DiffIDs[j])
			}
			wantModes := map[string]int64{"hostguard": 0o755}
			if j == 0 {
				wantModes = map[string]int64{"etc/": 0o755, "etc/ssl/": 0o755, "etc/ssl/certs/": 0o755, "etc/ssl/certs/ca-certificates.crt": 0o644}
			}
			checkHeaders(t, fmt.Sprintf("%s layer %d", want, j), hs, wantModes)
			for n, f := range fs {
				files[n] = f
			}
		}
		if string(files["etc/ssl/certs/ca-certificates.crt"]) != testPEM {
			t.Errorf("%s: CA bundle %q", want, files["etc/ssl/certs/ca-certificates.crt"])
		}
		bin, _ := os.ReadFile(filepath.Join(s.BinDir, "linux-"+m.Platform.Architecture, "hostguard"))
		if !bytes.Equal(files["hostguard"], bin) {
			t.Errorf("%s: /hostguard is not linux-%s/hostguard", want, m.Platform.Architecture)
		}
	}
	if len(caDigests) == 2 && caDigests[0] != caDigests[1] {
		t.Errorf("the CA layer differs between platforms: %v", caDigests)
	}
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, s *Spec)
		want   string
	}{
		{"no binary", func(t *testing.T, s *Spec) {
			os.Remove(filepath.Join(s.BinDir, "linux-arm64", "hostguard"))
		}, "linux-arm64/hostguard"},
		{"swapped binaries", func(t *testing.T, s *Spec) {
			os.WriteFile(filepath.Join(s.BinDir, "linux-arm64", "hostguard"), fakeELF("amd64", "x"), 0o755)
		}, "ELF machine 62, want 183 (arm64)"},
		{"darwin binary", func(t *testing.T, s *Spec) {
			os.WriteFile(filepath.Join(s.BinDir, "linux-amd64", "hostguard"), []byte("\xcf\xfa\xed\xfe macho"), 0o755)
		}, "not an ELF executable"},
		{"no time", func(t *testing.T, s *Spec) { s.Created = time.Time{} }, "SOURCE_DATE_EPOCH"},
		{"version with slash", func(t *testing.T, s *Spec) { s.Version = "cmd/hostguard/v0.1.0" }, `version "cmd/hostguard/v0.1.0" cannot be an image tag`},
		{"version with build metadata", func(t *testing.T, s *Spec) { s.Version = "v0.1.0+dirty" }, `version "v0.1.0+dirty" cannot be an image tag`},
		{"no revision", func(t *testing.T, s *Spec) { s.Revision = "" }, "no revision"},
		{"no certificates", func(t *testing.T, s *Spec) { s.CACerts = []byte("not PEM") }, "no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSpec(t)
			tc.change(t, s)
			out := filepath.Join(t.TempDir(), "image.oci.tar")
			err := WriteArchive(s, out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("an archive was written despite the error")
			}
		})
	}
}

func TestCABundle(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"B.crt":      testPEM,
		"A.crt":      strings.TrimSuffix(testPEM, "\n"), // no final newline
		"README.txt": "not a certificate",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := caBundle(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != testPEM+testPEM {
		t.Errorf("bundle %q, want both certificates, each ending in a newline", got)
	}
	if _, err := caBundle(t.TempDir()); err == nil || !strings.Contains(err.Error(), "apt-get install ca-certificates") {
		t.Errorf("empty directory: error %v, want one naming the package", err)
	}
	os.WriteFile(filepath.Join(dir, "C.crt"), []byte("junk"), 0o644)
	if _, err := caBundle(dir); err == nil || !strings.Contains(err.Error(), "C.crt is not a PEM certificate") {
		t.Errorf("junk certificate: error %v", err)
	}
}

func TestRunFlags(t *testing.T) {
	s := testSpec(t)
	ca := t.TempDir()
	os.WriteFile(filepath.Join(ca, "a.crt"), []byte(testPEM), 0o644)
	out := filepath.Join(t.TempDir(), "x.tar")
	base := []string{"-version", "v0.1.0", "-bindir", s.BinDir, "-ca-certs", ca, "-revision", "abc", "-out", out}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{append(slices.Clone(base), "-created", "1767225600"), 0, "localhost/hostguard:v0.1.0 for linux/amd64 and linux/arm64"},
		{base, 2, "no -created given"},
		{append(slices.Clone(base), "-created", "yesterday"), 2, `-created "yesterday" is not a positive number`},
		{append(slices.Clone(base), "-created", "1", "extra"), 2, `unexpected argument "extra"`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.want) {
			t.Errorf("mkimage %q: exit %d, output %q; want exit %d and %q", tc.args, code, stdout.String()+stderr.String(), tc.code, tc.want)
		}
	}
}

// TestMatchesDockerfile keeps the release image and the repository's
// Dockerfile, which people build with Docker, alike: the last stage's
// files, user, port, entrypoint and command.
func TestMatchesDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stage := string(b)[strings.LastIndex(string(b), "\nFROM "):]
	got := map[string][]string{}
	for _, line := range strings.Split(stage, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		got[instr] = append(got[instr], rest)
	}
	idx, err := Index(testSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.Image(mustManifest(t, idx).Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := im.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	jsonForm := func(v []string) string {
		b, _ := json.Marshal(v)
		return strings.ReplaceAll(string(b), `","`, `", "`)
	}
	var ports []string
	for p := range c.ExposedPorts {
		ports = append(ports, strings.TrimSuffix(p, "/tcp"))
	}
	want := map[string][]string{
		"FROM":       {"scratch"},
		"USER":       {c.User},
		"EXPOSE":     ports,
		"ENTRYPOINT": {jsonForm(c.Entrypoint)},
		"CMD":        {jsonForm(c.Cmd)},
	}
	for instr, w := range want {
		if !slices.Equal(got[instr], w) {
			t.Errorf("Dockerfile's last stage has %s %q, the release image %q", instr, got[instr], w)
		}
	}
	var copied []string
	for _, c := range got["COPY"] {
		f := strings.Fields(c)
		copied = append(copied, f[len(f)-1])
	}
	slices.Sort(copied)
	if w := []string{"/" + caPath, "/" + binaryPath}; !slices.Equal(copied, w) {
		t.Errorf("Dockerfile's last stage copies to %q, the release image holds %q", copied, w)
	}
}

func mustManifest(t *testing.T, idx v1.ImageIndex) *v1.IndexManifest {
	t.Helper()
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return m
}
