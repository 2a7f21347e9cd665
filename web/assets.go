package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"
)

// The page: one HTML file, one style sheet, one script; no build step.
//
//go:embed assets
var assetFS embed.FS

// assets are the embedded files, each with the ETag of its content, so that
// a browser revalidates them in one round trip and reloads them only when
// a new pgtrail serves new ones.
type assets struct {
	files map[string][]byte
	etags map[string]string
}

func loadAssets() (*assets, error) {
	a := &assets{files: map[string][]byte{}, etags: map[string]string{}}
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		name := path.Base(p)
		a.files[name], a.etags[name] = b, `"`+hex.EncodeToString(sum[:12])+`"`
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: assets: %w", err)
	}
	return a, nil
}

// serve answers with the named file, or 404.
func (a *assets) serve(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, ok := a.files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("ETag", a.etags[name])
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	}
}
