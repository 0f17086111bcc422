package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/jackc/pgx/v5/pgconn"
)

// Whole objects, for Iceberg tables kept on an object store (a warehouse
// or a table's location on S3): their files are written locally, uploaded
// before the metadata that names them is committed, and read from a local
// copy fetched whole.

// Download fetches the object uri whole into the file dst (written under
// a temporary name and renamed, so dst is either absent or complete).
func (s *Session) Download(ctx context.Context, uri, dst string) error {
	u, err := ParseURL(uri)
	if err != nil {
		return err
	}
	out, err := s.st.client(Pick(s.secrets, uri)).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(u.Bucket), Key: aws.String(u.Key)})
	if err != nil {
		return objectError(err, uri)
	}
	defer out.Body.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(dst), ".download-*")
	if err != nil {
		return err
	}
	n, err := io.Copy(f, out.Body)
	s.st.fetched.Add(n)
	s.st.requests.Add(1)
	if err == nil {
		err = f.Close()
	} else {
		f.Close()
	}
	if err == nil {
		err = os.Rename(f.Name(), dst)
	}
	if err != nil {
		os.Remove(f.Name())
		return objectError(fmt.Errorf("download: %w", err), uri)
	}
	return nil
}

// Upload writes the local file src as the object uri.
func (s *Session) Upload(ctx context.Context, uri, src string) error {
	u, err := ParseURL(uri)
	if err != nil {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = s.st.client(Pick(s.secrets, uri)).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(u.Bucket), Key: aws.String(u.Key),
		Body: f, ContentLength: aws.Int64(fi.Size())})
	if err != nil {
		return writeError(err, uri)
	}
	return nil
}

// Delete removes objects; objects already gone are no error.
func (s *Session) Delete(ctx context.Context, uris []string) error {
	byBucket := map[string][]string{}
	var order []string
	for _, uri := range uris {
		u, err := ParseURL(uri)
		if err != nil {
			return err
		}
		k := Pick(s.secrets, uri).name() + "\x00" + u.Bucket
		if _, ok := byBucket[k]; !ok {
			order = append(order, k)
		}
		byBucket[k] = append(byBucket[k], uri)
	}
	for _, k := range order {
		list := byBucket[k]
		for len(list) > 0 {
			n := min(len(list), 1000)
			if err := s.deleteBatch(ctx, list[:n]); err != nil {
				return err
			}
			list = list[n:]
		}
	}
	return nil
}

func (s *Session) deleteBatch(ctx context.Context, uris []string) error {
	u, _ := ParseURL(uris[0])
	var ids []types.ObjectIdentifier
	for _, uri := range uris {
		v, _ := ParseURL(uri)
		ids = append(ids, types.ObjectIdentifier{Key: aws.String(v.Key)})
	}
	out, err := s.st.client(Pick(s.secrets, uris[0])).DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(u.Bucket),
		Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
	if err != nil {
		return writeError(err, uris[0])
	}
	for _, e := range out.Errors {
		if aws.ToString(e.Code) != "NoSuchKey" {
			return &pgconn.PgError{Code: "58030", Message: fmt.Sprintf("could not remove s3://%s/%s: %s", u.Bucket, aws.ToString(e.Key), aws.ToString(e.Message))}
		}
	}
	return nil
}

// Listed is an object List found.
type Listed struct {
	URI      string
	Size     int64
	Modified time.Time
}

// ListAll names every object under prefix, in its subdirectories too (a
// "directory": a slash is added).
func (s *Session) ListAll(ctx context.Context, prefix string) ([]Listed, error) {
	u, err := ParseURL(prefix)
	if err != nil {
		return nil, err
	}
	key := u.Key
	if key != "" && !strings.HasSuffix(key, "/") {
		key += "/"
	}
	var out []Listed
	pg := s3.NewListObjectsV2Paginator(s.st.client(Pick(s.secrets, prefix)), &s3.ListObjectsV2Input{Bucket: aws.String(u.Bucket), Prefix: aws.String(key)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, objectError(err, prefix)
		}
		for _, it := range page.Contents {
			out = append(out, Listed{URI: URL{Bucket: u.Bucket, Key: aws.ToString(it.Key)}.String(), Size: aws.ToInt64(it.Size),
				Modified: aws.ToTime(it.LastModified)})
		}
	}
	return out, nil
}

func (s *Secret) name() string {
	if s == nil {
		return ""
	}
	return s.Name
}

// writeError is objectError for a write.
func writeError(err error, u string) error {
	e := objectError(err, u)
	var pgErr *pgconn.PgError
	if errors.As(e, &pgErr) && strings.HasPrefix(pgErr.Message, "could not read ") {
		pgErr.Message = "could not write " + strings.TrimPrefix(pgErr.Message, "could not read ")
	}
	return e
}
