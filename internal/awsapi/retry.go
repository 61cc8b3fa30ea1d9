package awsapi

import (
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// Retry defaults: what the retryer uses when neither the environment
// (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE) nor the shared config file says
// otherwise. A throttled retry sleeps a random time in
// [0, min(2^i s, DefaultRetryMaxBackoff)) before its i-th retry (i from 0;
// the SDK's base for throttling is 1 s, 50 ms for other errors).
const (
	// DefaultRetryMaxAttempts rides out 11 throttled (or 5xx, reset)
	// answers in a row on any call: a storm of 10 and one to spare. The
	// SDK's default is 3.
	DefaultRetryMaxAttempts = 12
	// DefaultRetryMaxBackoff caps one backoff. With it, the 10 retries of
	// a 10-throttle storm sleep at most 1+2+4+7*5 = 42 s, 21 s expected;
	// six such storms, one in each step of a run that calls AWS in
	// sequence, still fit in the 290 s a 300 s timeout leaves before the
	// 10 s deadline margin. The SDK's default, 20 s, would allow 131 s.
	DefaultRetryMaxBackoff = 5 * time.Second
	// DefaultThrottlingRetryCost is what a throttling retry takes from the
	// client's retry quota (500 tokens, for the life of the client, so
	// across warm invocations). At the SDK's 5, eleven ridden-out storms
	// (45 tokens each) would empty it and every later retry of the client,
	// throttled or not, would be refused at once. At 1 the quota pays for
	// about 55 such storms, more than several runs' deadlines allow, while
	// other retries (5xx, resets) still cost 14: the quota still stops
	// retrying a failing service after about 35 of them.
	DefaultThrottlingRetryCost = 1
)

// RetryCounter counts the retries the SDK's retryer makes (throttling, 5xx,
// connection errors), so a run's report can say how rough its day was. The
// retrying itself stays the SDK's (standard or adaptive, AWS_MAX_ATTEMPTS and
// AWS_RETRY_MODE honoured), with this function's defaults (see
// DefaultRetryMaxAttempts) and one addition: an answer cut short
// (unexpected EOF while reading it) is retried too, as a connection reset is.
// A nil counter counts nothing.
type RetryCounter struct {
	n atomic.Int64
	// OnDelay, when set, is given each retry's backoff as the retryer chose
	// it and returns the time to sleep instead. Tests record the
	// production backoff with it and sleep next to nothing; production
	// leaves it nil. Set it before the clients make their first call.
	OnDelay func(attempt int, err error, delay time.Duration) time.Duration
}

// Count returns the retries counted so far.
func (c *RetryCounter) Count() int64 {
	if c == nil {
		return 0
	}
	return c.n.Load()
}

// Instrument makes the retryers of clients built from cfg count each retry
// they schedule. With no retryer configured it builds the one of
// cfg.RetryMode (standard unless adaptive) with this function's defaults;
// the clients still apply cfg.RetryMaxAttempts (AWS_MAX_ATTEMPTS) on top.
// A retryer already in cfg is kept as it is.
func (c *RetryCounter) Instrument(cfg *aws.Config) {
	base := cfg.Retryer
	if base == nil {
		mode := cfg.RetryMode
		base = func() aws.Retryer { return newRetryer(mode) }
	}
	cfg.Retryer = func() aws.Retryer {
		r := base()
		if v2, ok := r.(aws.RetryerV2); ok {
			return countingRetryerV2{RetryerV2: v2, c: c}
		}
		return countingRetryer{Retryer: r, c: c}
	}
}

// newRetryer builds the SDK's retryer for mode with the defaults above.
func newRetryer(mode aws.RetryMode) aws.Retryer {
	defaults := func(o *retry.StandardOptions) {
		o.MaxAttempts = DefaultRetryMaxAttempts
		o.MaxBackoff = DefaultRetryMaxBackoff
		o.ThrottlingRetryCost = DefaultThrottlingRetryCost
	}
	if mode == aws.RetryModeAdaptive {
		return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
			o.StandardOptions = append(o.StandardOptions, defaults)
		})
	}
	return retry.NewStandard(defaults)
}

// delay counts a retry and applies OnDelay.
func (c *RetryCounter) delay(attempt int, opErr error, d time.Duration, err error) (time.Duration, error) {
	c.n.Add(1)
	if err == nil && c.OnDelay != nil {
		d = c.OnDelay(attempt, opErr, d)
	}
	return d, err
}

// The SDK asks RetryDelay exactly once before each retry it makes.
type countingRetryer struct {
	aws.Retryer
	c *RetryCounter
}

func (r countingRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	d, derr := r.Retryer.RetryDelay(attempt, err)
	return r.c.delay(attempt, err, d, derr)
}

func (r countingRetryer) IsErrorRetryable(err error) bool {
	return r.Retryer.IsErrorRetryable(err) || truncated(err)
}

type countingRetryerV2 struct {
	aws.RetryerV2
	c *RetryCounter
}

func (r countingRetryerV2) RetryDelay(attempt int, err error) (time.Duration, error) {
	d, derr := r.RetryerV2.RetryDelay(attempt, err)
	return r.c.delay(attempt, err, d, derr)
}

func (r countingRetryerV2) IsErrorRetryable(err error) bool {
	return r.RetryerV2.IsErrorRetryable(err) || truncated(err)
}

// truncated tells an answer cut short: the SDK reports it as a
// deserialization error, which it does not retry by itself. A cancel whose
// answer was lost is retried, and EC2's IncorrectState then shows it done.
func truncated(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }
