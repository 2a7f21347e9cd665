package worker

import (
	"context"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// A message that cannot be processed comes back until the queue's redrive
// policy moves it to the dead-letter queue, five times or so. Its reason is
// logged at error level on its first receive only: on the later ones, the
// lines that would say the same again are logged at debug level.

// receiveCount is SQS's ApproximateReceiveCount of m, 0 when the queue does
// not say.
func receiveCount(m types.Message) int {
	n, _ := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	return n
}

type redeliveryKey struct{}

// withRedelivery marks ctx as the processing of a message that SQS has
// delivered before.
func withRedelivery(ctx context.Context) context.Context {
	return context.WithValue(ctx, redeliveryKey{}, true)
}

// quietOnRedelivery returns log, or, when ctx is the processing of a
// redelivered message, log with its errors written at debug level: the
// permanent failures it reports were logged at the first receive.
func quietOnRedelivery(ctx context.Context, log *zap.Logger) *zap.Logger {
	if again, _ := ctx.Value(redeliveryKey{}).(bool); again {
		return quiet(log)
	}
	return log
}

// quiet returns log with its error entries written at debug level.
func quiet(log *zap.Logger) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return quietCore{c} }))
}

// quietCore writes error entries at debug level.
type quietCore struct{ zapcore.Core }

func (c quietCore) With(fields []zapcore.Field) zapcore.Core { return quietCore{c.Core.With(fields)} }

func (c quietCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Level == zapcore.ErrorLevel {
		e.Level = zapcore.DebugLevel
	}
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}
