package localaws

import (
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/Admiral-Piett/goaws/app/gosqs"
	"github.com/Admiral-Piett/goaws/app/models"
	"github.com/Admiral-Piett/goaws/app/router"
	"github.com/sirupsen/logrus"
)

// accountID is the AWS account that goaws puts in queue URLs and ARNs.
const accountID = "000000000000"

// periodicTick is how often goaws makes expired in-flight messages visible
// again and moves them to a dead-letter queue. goaws itself uses one second;
// a shorter tick keeps visibility timeouts close to their nominal length.
const periodicTick = 250 * time.Millisecond

// goawsInstance is the one goaws of the process. goaws keeps its queues,
// topics and environment in package variables, so a second instance could
// only share them; this variable is the one exception to "no globals" in
// this package and exists because goaws forces it.
var goawsInstance struct {
	once    sync.Once
	handler http.Handler
}

// goawsHandler starts goaws on first use and returns its HTTP handler,
// wrapped in a guard that makes it safe for concurrent requests. The first
// caller decides the host and port that goaws writes into queue URLs; later
// callers get the same handler and their addr is ignored.
func goawsHandler(addr net.Addr, verbose bool) http.Handler {
	goawsInstance.once.Do(func() {
		// goaws logs every request at info, every empty receive at warn and
		// every lookup of a missing queue at error, through the standard
		// logrus logger; nothing else in pgtrail uses logrus.
		if verbose {
			logrus.SetLevel(logrus.InfoLevel)
			logrus.SetOutput(os.Stderr)
		} else {
			logrus.SetOutput(io.Discard)
		}
		host, port := hostPort(addr)
		models.CurrentEnvironment = models.Environment{
			Host: host,
			Port: port,
			// Region stays empty on purpose: with a region goaws builds queue
			// URLs as http://<region>.<host>:<port>/..., a host that does not
			// resolve. The price is ARNs with an empty region field.
			Region:    "",
			AccountID: accountID,
			QueueAttributeDefaults: models.EnvQueueAttributes{
				VisibilityTimeout:      30,
				MaximumMessageSize:     262144,
				MessageRetentionPeriod: 345600,
			},
		}
		go gosqs.PeriodicTasks(periodicTick, make(chan bool))
		goawsInstance.handler = newGuard(router.New())
	})
	return goawsInstance.handler
}

// hostPort splits a listener address into the host and port that goaws
// concatenates into URLs, bracketing IPv6 hosts.
func hostPort(addr net.Addr) (host, port string) {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "127.0.0.1", "0"
	}
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		host = "[" + host + "]"
	}
	return host, port
}
