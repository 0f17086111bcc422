package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5/pgconn"
)

// client is the S3 client of a secret (nil: unsigned requests to AWS).
func (st *Store) client(sec *Secret) *s3.Client {
	key := "anonymous"
	if sec != nil {
		key = strings.Join([]string{sec.Name, sec.KeyID, sec.Secret, sec.SessionToken, sec.Region, sec.Endpoint, sec.URLStyle, fmt.Sprint(sec.UseSSL)}, "\x00")
	}
	if c, ok := st.clients.Load(key); ok {
		return c.(*s3.Client)
	}
	opts := s3.Options{
		Region:                     "us-east-1",
		Credentials:                aws.AnonymousCredentials{},
		HTTPClient:                 st.http,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		DisableLogOutputChecksumValidationSkipped: true,
	}
	if sec != nil {
		opts.Region = sec.Region
		if sec.KeyID != "" || sec.Secret != "" {
			opts.Credentials = credentials.NewStaticCredentialsProvider(sec.KeyID, sec.Secret, sec.SessionToken)
		}
		if sec.Endpoint != "" {
			ep := sec.Endpoint
			if !strings.Contains(ep, "://") {
				if sec.UseSSL {
					ep = "https://" + ep
				} else {
					ep = "http://" + ep
				}
			}
			opts.BaseEndpoint = aws.String(ep)
		}
		opts.UsePathStyle = sec.URLStyle == "path"
	}
	c := s3.New(opts)
	actual, _ := st.clients.LoadOrStore(key, c)
	return actual.(*s3.Client)
}

// objectError maps an object store's error to a SQLSTATE, naming the
// object.
func objectError(err error, u string) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return err
	}
	var re interface{ HTTPStatusCode() int }
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	code := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	switch {
	case status == http.StatusNotFound || code == "NoSuchKey" || code == "NoSuchBucket" || code == "NotFound":
		return &pgconn.PgError{Code: "58P01", Message: fmt.Sprintf("could not open %s: no such object", u), Detail: code}
	case status == http.StatusForbidden || code == "AccessDenied" || code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch":
		return &pgconn.PgError{Code: "42501", Message: fmt.Sprintf("could not read %s: access denied by the object store", u),
			Detail: code, Hint: "Check the secret whose SCOPE covers the path (mooncake.create_secret)."}
	case status == http.StatusPreconditionFailed:
		return &pgconn.PgError{Code: "40001", Message: fmt.Sprintf("%s changed while it was read", u), Hint: "Run the query again."}
	}
	return &pgconn.PgError{Code: "58030", Message: fmt.Sprintf("could not read %s: %v", u, err)}
}

// getRange reads [off, off+n) of an object.
func (st *Store) getRange(ctx context.Context, o *Object, off, n int64, dst []byte) error {
	in := &s3.GetObjectInput{Bucket: aws.String(o.URL.Bucket), Key: aws.String(o.URL.Key),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))}
	if o.ETag != "" {
		in.IfMatch = aws.String(o.ETag)
	}
	out, err := st.client(o.secret).GetObject(ctx, in)
	if err != nil {
		return objectError(err, o.URL.String())
	}
	defer out.Body.Close()
	got, err := io.ReadFull(out.Body, dst[:n])
	st.fetched.Add(int64(got))
	st.requests.Add(1)
	if err != nil {
		return objectError(fmt.Errorf("reading bytes %d-%d: %w", off, off+n-1, err), o.URL.String())
	}
	return nil
}
