package handler

import (
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// RetryCounter counts the retries the SDK's retryer makes (throttling, 5xx,
// connection errors), so a run's report can say how rough its day was. The
// retrying itself stays the SDK's (standard or adaptive, AWS_MAX_ATTEMPTS and
// AWS_RETRY_MODE honoured), with one addition: an answer cut short
// (unexpected EOF while reading it) is retried too, as a connection reset is.
// A nil counter counts nothing.
type RetryCounter struct {
	n atomic.Int64
}

// Count returns the retries counted so far.
func (c *RetryCounter) Count() int64 {
	if c == nil {
		return 0
	}
	return c.n.Load()
}

// Instrument makes the retryers of clients built from cfg count each retry
// they schedule. With no retryer configured it builds the one the clients
// would have built from cfg.RetryMode (standard or adaptive); the clients
// still apply cfg.RetryMaxAttempts on top.
func (c *RetryCounter) Instrument(cfg *aws.Config) {
	base := cfg.Retryer
	if base == nil {
		mode := cfg.RetryMode
		base = func() aws.Retryer {
			if mode == aws.RetryModeAdaptive {
				return retry.NewAdaptiveMode()
			}
			return retry.NewStandard()
		}
	}
	cfg.Retryer = func() aws.Retryer {
		r := base()
		if v2, ok := r.(aws.RetryerV2); ok {
			return countingRetryerV2{RetryerV2: v2, n: &c.n}
		}
		return countingRetryer{Retryer: r, n: &c.n}
	}
}

// The SDK asks RetryDelay exactly once before each retry it makes.
type countingRetryer struct {
	aws.Retryer
	n *atomic.Int64
}

func (r countingRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	r.n.Add(1)
	return r.Retryer.RetryDelay(attempt, err)
}

func (r countingRetryer) IsErrorRetryable(err error) bool {
	return r.Retryer.IsErrorRetryable(err) || truncated(err)
}

type countingRetryerV2 struct {
	aws.RetryerV2
	n *atomic.Int64
}

func (r countingRetryerV2) RetryDelay(attempt int, err error) (time.Duration, error) {
	r.n.Add(1)
	return r.RetryerV2.RetryDelay(attempt, err)
}

func (r countingRetryerV2) IsErrorRetryable(err error) bool {
	return r.RetryerV2.IsErrorRetryable(err) || truncated(err)
}

// truncated tells an answer cut short: the SDK reports it as a
// deserialization error, which it does not retry by itself. A cancel whose
// answer was lost is retried, and EC2's IncorrectState then shows it done.
func truncated(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }
