package admission

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
)

// Controller enforces the limits. The thread and sandbox limits are
// counted in PostgreSQL (every replica sees the same numbers); the rate
// limit is this replica's.
type Controller struct {
	pool   *pgxpool.Pool
	q      *db.Queries
	limits Limits
	log    *slog.Logger
	rate   *rateLimiter
	m      *controllerMetrics
}

// Options configure a Controller.
type Options struct {
	Pool   *pgxpool.Pool
	Limits Limits
	Logger *slog.Logger
	// Now is the rate limiter's clock (tests); time.Now when nil.
	Now func() time.Time
}

// New returns a controller; Register exports its metrics.
func New(o Options) *Controller {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Controller{
		pool: o.Pool, q: db.New(o.Pool), limits: o.Limits, log: o.Logger,
		rate: newRateLimiter(o.Limits.RequestsPerSecond, o.Limits.Burst, o.Now),
		m:    newControllerMetrics(),
	}
}

// claimTTL is how long a sandbox being started counts as running when the
// replica that admitted it never says the start is over (it died): longer
// than the sandbox client's ensure timeout (a cold create plus a start).
const claimTTL = 3 * time.Minute

// threadRetryAfter is the hint of a thread-limit refusal. Threads do not end
// on their own (the client deletes one), so it only paces retries.
const threadRetryAfter = time.Minute

// sandboxRetryAfter bounds the hint of a sandbox-limit refusal, which is the
// time until the earliest running thread's auto-stop (a lease or a command
// can keep a sandbox longer, and a delete frees one sooner); unknownRetry
// is the hint when no deadline is known.
const (
	minRetryAfter = time.Second
	maxRetryAfter = 15 * time.Minute
	unknownRetry  = 30 * time.Second
)

// CreateThread inserts the user's thread row, or revives a deleted one,
// unless that would take the user past ThreadsPerUser live threads. created
// is false when the thread already exists and is live (it is not counted
// again). The count and the insert run under a per-user advisory lock, so N
// concurrent creates on any number of replicas admit exactly the free places.
func (c *Controller) CreateThread(ctx context.Context, userID, threadID string) (created bool, err error) {
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		q := c.q.WithTx(tx)
		if max := c.limits.ThreadsPerUser; max > 0 {
			if err := q.AdmissionLockUserThreads(ctx, userID); err != nil {
				return fmt.Errorf("locking %s's threads: %w", userID, err)
			}
			n, err := q.AdmissionCountThreads(ctx, db.AdmissionCountThreadsParams{UserID: userID, ThreadID: threadID})
			if err != nil {
				return fmt.Errorf("counting %s's threads: %w", userID, err)
			}
			if !n.Exists && int(n.Live) >= max {
				return c.refuse(&Error{Limit: ThreadLimit, Max: float64(max), RetryAfter: threadRetryAfter})
			}
		}
		_, err := q.APICreateOrReviveThread(ctx, db.APICreateOrReviveThreadParams{UserID: userID, ThreadID: threadID})
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil // exists and is live
		case err != nil:
			return fmt.Errorf("creating thread: %w", err)
		}
		created = true
		return nil
	})
	return created, err
}

// AdmitSandbox is the sandbox client's Admit hook: it runs before an
// ensure-running that may start or create the entity's sandbox. A sandbox
// recorded running is admitted at once (the ensure only refreshes a cache).
// Otherwise, under a global advisory lock, the running sandboxes (recorded
// ones and those other requests are starting) are counted; past a limit the
// answer is an *Error, else a claim makes this start count until release
// is called (when the ensure is over: by then the workflow has recorded the
// sandbox running, or it failed). One gap is accepted: a client that gives
// up while its ensure is shared with others releases its claim early, so
// until the workflow records the sandbox running one more start may be
// admitted.
func (c *Controller) AdmitSandbox(ctx context.Context, ref entity.Ref) (release func(), err error) {
	perUser := ref.Kind == entity.KindThread && c.limits.RunningPerUser > 0
	if !perUser && c.limits.RunningTotal <= 0 {
		return func() {}, nil
	}
	key := db.AdmissionSandboxRunningParams{SandboxType: ref.Kind.SandboxType(), UserID: ref.UserID, ThreadID: ref.ThreadID}
	running, err := c.q.AdmissionSandboxRunning(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("admission: %w", err)
	}
	if running {
		return func() {}, nil
	}
	token := uuid.New()
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		q := c.q.WithTx(tx)
		if err := q.AdmissionLockSandboxes(ctx); err != nil {
			return fmt.Errorf("admission lock: %w", err)
		}
		maxUser := 0
		if perUser {
			maxUser = c.limits.RunningPerUser
		}
		n, err := q.AdmissionClaim(ctx, db.AdmissionClaimParams{
			Token: token, SandboxType: key.SandboxType, UserID: key.UserID, ThreadID: key.ThreadID,
			TtlSeconds: claimTTL.Seconds(), MaxUserAgents: int32(maxUser), MaxTotal: int32(max(c.limits.RunningTotal, 0)),
		})
		switch {
		case err != nil:
			return fmt.Errorf("claiming a running sandbox: %w", err)
		case n.Claimed:
			return nil
		case perUser && int(n.UserAgents) >= maxUser:
			user := ref.UserID
			return c.refuse(&Error{Limit: SandboxLimit, Max: float64(maxUser), RetryAfter: c.nextStop(ctx, q, &user)})
		default:
			return c.refuse(&Error{Limit: TotalSandboxLimit, Max: float64(c.limits.RunningTotal), RetryAfter: c.nextStop(ctx, q, nil)})
		}
	})
	if err != nil {
		return nil, err
	}
	return func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := c.q.AdmissionRelease(rctx, token); err != nil {
			// The claim expires on its own after claimTTL.
			c.log.WarnContext(rctx, "releasing sandbox claim", "workflow_id", ref.WorkflowID(), "err", err)
		}
	}, nil
}

// nextStop is the Retry-After of a sandbox limit: the time until the
// earliest auto-stop among the running threads of user (of everyone when
// nil), clamped to [minRetryAfter, maxRetryAfter].
func (c *Controller) nextStop(ctx context.Context, q *db.Queries, user *string) time.Duration {
	secs, err := q.AdmissionNextAutoStop(ctx, user)
	if err != nil || secs <= 0 {
		return unknownRetry
	}
	return min(max(time.Duration(secs*float64(time.Second)), minRetryAfter), maxRetryAfter)
}

// Allow takes one request of the key from its bucket, or answers how long
// until one is free.
func (c *Controller) Allow(key uuid.UUID) error {
	if c.rate == nil {
		return nil
	}
	if err := c.rate.allow(key); err != nil {
		return c.refuse(err)
	}
	return nil
}

// refuse counts a refusal and returns it.
func (c *Controller) refuse(e *Error) error {
	c.m.refused.WithLabelValues(e.Limit).Inc()
	return e
}
