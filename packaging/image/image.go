package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths and settings of the image, the same as the repository's Dockerfile.
const (
	binaryPath = "hostguard"                         // /hostguard
	caPath     = "etc/ssl/certs/ca-certificates.crt" // where Go's crypto/x509 looks first on Linux
	user       = "65532:65532"                       // numeric, so that Kubernetes can verify runAsNonRoot
	port       = "8080/tcp"
)

// Standard annotation keys (OCI image-spec, annotations.md).
const (
	annRefName     = "org.opencontainers.image.ref.name"
	annVersion     = "org.opencontainers.image.version"
	annSource      = "org.opencontainers.image.source"
	annLicenses    = "org.opencontainers.image.licenses"
	annCreated     = "org.opencontainers.image.created"
	annRevision    = "org.opencontainers.image.revision"
	annTitle       = "org.opencontainers.image.title"
	annDescription = "org.opencontainers.image.description"
)

// tagPattern is the grammar of a tag in an image reference (the
// distribution spec's), which the version becomes.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// platforms returns the images of the index, in its order. Go's arm64
// port targets ARMv8.0, hence the variant.
func platforms() []v1.Platform {
	return []v1.Platform{
		{OS: "linux", Architecture: "amd64"},
		{OS: "linux", Architecture: "arm64", Variant: "v8"},
	}
}

// Spec is what the image is made of. Every field but CAOrigin is required.
type Spec struct {
	Version  string    // the release, such as v0.1.0
	Name     string    // the reference podman load tags it with, without the tag: localhost/hostguard
	Source   string    // the repository's URL
	Revision string    // the commit the binaries were built from
	Created  time.Time // SOURCE_DATE_EPOCH: the time of every file, layer and config
	BinDir   string    // holds linux-amd64/hostguard and linux-arm64/hostguard
	CACerts  []byte    // the CA bundle
	CAOrigin string    // where the bundle comes from, recorded in the image's history
}

func (s *Spec) validate() error {
	for _, f := range []struct{ name, value string }{
		{"version", s.Version}, {"name", s.Name}, {"source", s.Source},
		{"revision", s.Revision}, {"bindir", s.BinDir},
	} {
		if strings.TrimSpace(f.value) == "" {
			return fmt.Errorf("no %s given", f.name)
		}
	}
	if s.Created.IsZero() || s.Created.Unix() <= 0 {
		return fmt.Errorf("creation time %v is not after 1970: set SOURCE_DATE_EPOCH, such as $(git log -1 --format=%%ct)", s.Created)
	}
	if len(s.CACerts) == 0 || !bytes.Contains(s.CACerts, []byte("-----BEGIN CERTIFICATE-----")) {
		return errors.New("the CA bundle holds no PEM certificate")
	}
	if !tagPattern.MatchString(s.Version) {
		return fmt.Errorf("version %q cannot be an image tag (letters, digits, '_', '.', '-'; no '+' or '/'): use a form such as v0.1.0", s.Version)
	}
	return nil
}

// RefName is the name podman load gives the image: Name:Version.
func (s *Spec) RefName() string { return s.Name + ":" + s.Version }

func (s *Spec) annotations() map[string]string {
	return map[string]string{
		annVersion:     s.Version,
		annSource:      s.Source,
		annLicenses:    "Apache-2.0",
		annCreated:     s.Created.UTC().Format(time.RFC3339),
		annRevision:    s.Revision,
		annTitle:       "hostguard",
		annDescription: "Host header allow list as a reverse proxy, with the addresses load balancers' health checks use",
	}
}

// file is one regular file or directory of a layer.
type file struct {
	name string // relative, slash-separated, without a trailing slash
	mode int64  // permission bits
	dir  bool
	data []byte
}

// layerTar writes files as an uncompressed tar, sorted by name, each
// directory before its contents, owned by root, every time set to mtime,
// in the USTAR format (no PAX records, so no access or change times).
func layerTar(files []file, mtime time.Time) ([]byte, error) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name:    f.name,
			Mode:    f.mode,
			ModTime: mtime.UTC().Truncate(time.Second),
			Format:  tar.FormatUSTAR,
		}
		if f.dir {
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// withParents adds the directories above each file, mode 0755.
func withParents(files []file) []file {
	seen := map[string]bool{}
	for _, f := range files {
		seen[f.name] = true
	}
	out := slices.Clone(files)
	for _, f := range files {
		for d := path.Dir(f.name); d != "." && !seen[d]; d = path.Dir(d) {
			seen[d] = true
			out = append(out, file{name: d, mode: 0o755, dir: true})
		}
	}
	return out
}

// layer makes an OCI gzip layer of files. gzip's header carries no name
// and no time (compress/gzip writes neither unless asked), so that the
// same files give the same blob.
func layer(files []file, mtime time.Time) (v1.Layer, error) {
	b, err := layerTar(withParents(files), mtime)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestCompression))
}

// image makes the image of one platform: the CA bundle's layer (the same
// blob for every platform), then the binary's.
func image(s *Spec, p v1.Platform, ca v1.Layer) (v1.Image, error) {
	dir := p.OS + "-" + p.Architecture
	bin, err := os.ReadFile(filepath.Join(s.BinDir, dir, "hostguard"))
	if err != nil {
		return nil, fmt.Errorf("%w (build the binaries first: scripts/release does, as BINDIR/<os>-<arch>/hostguard)", err)
	}
	if err := checkELF(bin, p.Architecture); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(s.BinDir, dir, "hostguard"), err)
	}
	bl, err := layer([]file{{name: binaryPath, mode: 0o755, data: bin}}, s.Created)
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: s.Created.UTC()}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: ca, History: v1.History{
			Created: created, CreatedBy: "COPY " + s.CAOrigin + " /" + caPath,
			Comment: "CA certificates, for https:// upstreams"}},
		mutate.Addendum{Layer: bl, History: v1.History{
			Created: created, CreatedBy: "COPY " + dir + "/hostguard /" + binaryPath,
			Comment: "hostguard " + s.Version + " for " + p.OS + "/" + p.Architecture + ", built by scripts/release"}},
	)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = created
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Config = v1.Config{
		User:         user,
		Entrypoint:   []string{"/" + binaryPath},
		Cmd:          []string{"proxy", "--allow", "example.com"},
		ExposedPorts: map[string]struct{}{port: {}},
		WorkingDir:   "/",
		Labels:       s.annotations(),
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, s.annotations()).(v1.Image), nil
}

// checkELF refuses a file that is not a Linux executable for arch, so that
// a darwin or swapped binary never ends up in the image.
func checkELF(b []byte, arch string) error {
	machine := map[string]uint16{"amd64": 62, "arm64": 183}[arch]
	if len(b) < 20 || string(b[:4]) != "\x7fELF" {
		return errors.New("not an ELF executable")
	}
	if got := uint16(b[18]) | uint16(b[19])<<8; got != machine {
		return fmt.Errorf("ELF machine %d, want %d (%s)", got, machine, arch)
	}
	return nil
}

// Index makes the multi-platform image index of s.
func Index(s *Spec) (v1.ImageIndex, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	ca, err := layer([]file{{name: caPath, mode: 0o644, data: s.CACerts}}, s.Created)
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms() {
		img, err := image(s, p, ca)
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        plainImage{img},
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	return mutate.Annotations(idx, s.annotations()).(v1.ImageIndex), nil
}

// plainImage is an image whose descriptor in an index has no artifactType:
// go-containerregistry would set it to the config's media type, which the
// image spec allows but which marks an artifact, not an image, to some
// tools (buildah, docker and crane write none for an image).
type plainImage struct{ v1.Image }

// ArtifactType is empty: this is a container image.
func (plainImage) ArtifactType() (string, error) { return "", nil }

// WriteArchive writes the OCI image layout of s as a tar to out: index.json
// names one descriptor, the multi-platform index, annotated with
// s.RefName() (what podman load tags the image with).
func WriteArchive(s *Spec, out string) error {
	idx, err := Index(s)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "hostguard-image-layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	ann := map[string]string{annRefName: s.RefName()}
	if err := p.AppendIndex(idx, layout.WithAnnotations(ann)); err != nil {
		return err
	}
	return tarDir(tmp, out, s.Created)
}

// tarDir writes the tree under dir as a tar at out, with the same
// discipline as the layers: sorted names (filepath.WalkDir walks in
// lexical order), owner root, fixed times and modes.
func tarDir(dir, out string, mtime time.Time) (err error) {
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(out + ".tmp")
		}
	}()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		h := &tar.Header{
			Name:    filepath.ToSlash(rel),
			ModTime: mtime.UTC().Truncate(time.Second),
			Format:  tar.FormatUSTAR,
		}
		if d.IsDir() {
			h.Typeflag, h.Mode, h.Name = tar.TypeDir, 0o755, h.Name+"/"
			return tw.WriteHeader(h)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, int64(len(b))
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(out+".tmp", out)
}
