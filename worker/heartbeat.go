package worker

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.uber.org/zap"
)

// heartbeat keeps one message invisible while it is being processed: every
// half visibility timeout it extends the timeout, until the message has been
// held for Config.MaxVisibility (its deadline). It is owned by the message
// and stops when stop is called.
type heartbeat struct {
	cancel context.CancelFunc
	done   chan struct{}
	// deadline is when the heartbeat stops extending the timeout.
	deadline time.Time
}

func (w *Worker) startHeartbeat(ctx context.Context, log *zap.Logger, handle string) *heartbeat {
	ctx, cancel := context.WithCancel(ctx)
	timeout := w.cfg.VisibilityTimeout
	deadline := time.Now().Add(w.cfg.MaxVisibility)
	hb := &heartbeat{cancel: cancel, done: make(chan struct{}), deadline: deadline}
	go func() {
		defer close(hb.done)
		t := time.NewTicker(timeout / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			ext := timeout
			if left := time.Until(deadline); left < ext {
				ext = left
			}
			if ext <= 0 {
				log.Warn("message held for the maximum visibility extension; it may be delivered again",
					zap.Duration("max_visibility", w.cfg.MaxVisibility))
				return
			}
			_, err := w.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
				QueueUrl:          aws.String(w.cfg.QueueURL),
				ReceiptHandle:     aws.String(handle),
				VisibilityTimeout: int32(ext.Round(time.Second) / time.Second),
			})
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("extend visibility", zap.Error(err))
				}
				continue
			}
			w.metrics.visibilityExtended()
		}
	}()
	return hb
}

func (hb *heartbeat) stop() {
	hb.cancel()
	<-hb.done
}
