package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const defaultS3Region = "us-east-1"

// checkEndpoint accepts an http(s) URL without credentials or query (so that the SDK's errors,
// which quote it, carry no secret).
func checkEndpoint(e string) error {
	if e == "" {
		return nil
	}
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("endpoint must be an http:// or https:// URL")
	}
	if u.User != nil || u.RawQuery != "" {
		return errors.New("endpoint must not carry credentials or a query (the AWS client reads credentials from its environment)")
	}
	return nil
}

// s3Store is a Store in an S3 bucket (or an S3-compatible store at endpoint, addressed
// path-style), through the AWS SDK v2 with its default credential chain and its standard
// retries. An object is uploaded with one PutObject of the whole body (built in memory: the
// consumers' buffers bound it), which S3 makes visible at once or not at all.
type s3Store struct {
	client *s3.Client
	bucket string
	prefix string // "" or "a/b/"
}

func openS3(ctx context.Context, bucket, prefix, region, endpoint string) (Store, error) {
	if region == "" {
		region = defaultS3Region
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		// The SDK would print a warning to standard error for every object read without a
		// checksum in the response (S3-compatible stores); the read is checked by its parser.
		o.DisableLogOutputChecksumValidationSkipped = true
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			o.UsePathStyle = true
		}
	})
	s := &s3Store{client: client, bucket: bucket}
	if prefix != "" {
		s.prefix = prefix + "/"
	}
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return nil, fmt.Errorf("opening the S3 bucket: %w", err)
	}
	return s, nil
}

func (s *s3Store) Put(ctx context.Context, key string, write func(io.Writer) error) (int64, error) {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return 0, err
	}
	n := int64(buf.Len())
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key),
		Body: bytes.NewReader(buf.Bytes()), ContentLength: aws.Int64(n), ContentType: aws.String(contentType(key))})
	if err != nil {
		return 0, fmt.Errorf("uploading %s: %w", key, err)
	}
	return n, nil
}

func (s *s3Store) List(ctx context.Context, prefix string, fn func(string) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix + prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing objects: %w", err)
		}
		for _, o := range page.Contents {
			if err := fn(strings.TrimPrefix(aws.ToString(o.Key), s.prefix)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *s3Store) Open(ctx context.Context, key string) (Object, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key)})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	return newMemObject(b), nil
}

func (s *s3Store) Delete(ctx context.Context, key string) error {
	// S3 answers a delete of a missing key with success.
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key)}); err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

func (s *s3Store) RemoveTemps(context.Context, func(string) bool) (int, error) { return 0, nil }

func (s *s3Store) Close() error { return nil }
