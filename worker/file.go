package worker

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pgtrail/pgtrail/cloudtrail"
	"github.com/pgtrail/pgtrail/internal/retry"
	"github.com/pgtrail/pgtrail/sink"
)

// File commits one local CloudTrail file through the same decode, normalize
// and write path as an S3 object. Its events carry an empty s3_bucket and
// the file's path as s3_key. Transient database errors are retried.
func (p *Processor) File(ctx context.Context, path string) (sink.WriteResult, error) {
	var res sink.WriteResult
	err := p.backoff.Retry(ctx, func() error {
		f, err := os.Open(path)
		if err != nil {
			return retry.Permanent(err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return retry.Permanent(err)
		}
		r, release, err := p.readSmall(f, st.Size())
		if err != nil {
			return retry.Permanent(fmt.Errorf("read %s: %w", path, err))
		}
		defer release()
		res, err = p.write(ctx, &sink.Object{Key: path, Size: st.Size()}, r, nil)
		return err
	}, nil)
	return res, err
}

// LogFiles expands paths into the CloudTrail log files they name: files as
// given, and in folders (recursively) every file ending in .json or
// .json.gz, in lexical order. Digest files are left out.
func LogFiles(paths []string) ([]string, error) {
	var out []string
	for _, root := range paths {
		st, err := os.Stat(root)
		if err != nil {
			return out, fmt.Errorf("ingest: %w", err)
		}
		if !st.IsDir() {
			out = append(out, root)
			continue
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || cloudtrail.IsDigestKey(filepath.ToSlash(path)) {
				return nil
			}
			if strings.HasSuffix(path, ".json") || strings.HasSuffix(path, ".json.gz") {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return out, fmt.Errorf("ingest: %w", err)
		}
	}
	return out, nil
}
