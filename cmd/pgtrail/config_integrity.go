package main

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"go.uber.org/zap"

	"github.com/pgtrail/pgtrail/digestkeys"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/worker"
)

// validateIntegrity checks the integrity settings.
func (c *Config) validateIntegrity() []error {
	if c.IntegrityGrace < time.Hour || c.IntegrityGrace > 48*time.Hour {
		return []error{fmt.Errorf("config: PGTRAIL_INTEGRITY_GRACE: want %s, got %s",
			variables["PGTRAIL_INTEGRITY_GRACE"].want, shown(c.IntegrityGrace))}
	}
	return nil
}

// digestVerifier returns the verifier of digest files that run and
// backfill give their processor, or nil when PGTRAIL_INTEGRITY is false.
// Its keys come from PGTRAIL_DIGEST_KEYS when set, else from CloudTrail's
// ListPublicKeys in each trail's home region.
func (c *Config) digestVerifier(awsCfg aws.Config, s3c worker.S3, pg *sink.Postgres, m *worker.Metrics, log *zap.Logger) (*worker.DigestVerifier, error) {
	if !c.Integrity {
		return nil, nil
	}
	var keys worker.DigestKeySource
	if c.DigestKeys != "" {
		dir, err := digestkeys.LoadDir(c.DigestKeys)
		if err != nil {
			return nil, fmt.Errorf("config: PGTRAIL_DIGEST_KEYS: %w", err)
		}
		keys = dir
	} else {
		keys = digestkeys.NewAWS(func(region string) digestkeys.ListPublicKeys {
			return cloudtrail.NewFromConfig(awsCfg, func(o *cloudtrail.Options) { o.Region = region })
		})
	}
	return worker.NewDigestVerifier(s3c, pg, keys, c.IntegrityGrace, m, log), nil
}
