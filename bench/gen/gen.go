// Package gen makes realistic, deterministic CloudTrail log files for
// benchmarks: varied services, identities and regions; requestParameters and
// responseElements from null to several KB; about 1.2 KB per record on
// average; 50 to 200 records per file, gzip-compressed without whitespace as
// CloudTrail delivers them; and a share of files that a second trail
// delivers again under its own key (the duplicates the sink must skip).
//
// The same Config always gives the same bytes.
package gen

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Config describes a data set.
type Config struct {
	// Seed makes the data set; the same seed gives the same bytes.
	Seed uint64
	// Events is the number of distinct events (about; whole files are made).
	Events int
	// DupShare is the share of delivered files (and so of events) that are
	// a second trail's copies of files delivered before.
	DupShare float64
	// MinRecords and MaxRecords bound the records per file (default 50, 200).
	MinRecords, MaxRecords int
	// Start is the time of the first event (default 2024-03-01 UTC); events
	// span about Days days (default 3), so several daily partitions.
	Start time.Time
	Days  int
}

func (c *Config) defaults() {
	if c.MinRecords <= 0 {
		c.MinRecords = 50
	}
	if c.MaxRecords < c.MinRecords {
		c.MaxRecords = max(200, c.MinRecords)
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	}
	if c.Days <= 0 {
		c.Days = 3
	}
}

// Object is one generated log file.
type Object struct {
	Key string
	// Body is the gzip-compressed file.
	Body []byte
	// Raw is the decompressed size.
	Raw int64
	// Records is the number of records in the file.
	Records int
	// Dup is true for a second trail's copy of an earlier file.
	Dup bool
}

// Set is a generated data set, in delivery order.
type Set struct {
	Objects []Object
	// Unique is the number of distinct events.
	Unique int
	// Records counts every delivered record, duplicates included.
	Records int
	// Compressed and Raw are the total sizes of the files.
	Compressed, Raw int64
}

// Generate makes the data set described by cfg, using every CPU.
func Generate(cfg Config) *Set {
	cfg.defaults()
	// Plan the files first, so that parallel generation is deterministic.
	plan := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	var sizes []int
	for n := 0; n < cfg.Events; {
		k := cfg.MinRecords + plan.IntN(cfg.MaxRecords-cfg.MinRecords+1)
		sizes = append(sizes, k)
		n += k
	}
	objs := make([]Object, len(sizes))
	span := time.Duration(cfg.Days) * 24 * time.Hour
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			var raw bytes.Buffer
			for i := range next {
				r := rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))
				// Files follow each other in time, as a trail delivers them.
				t0 := cfg.Start.Add(time.Duration(float64(span) * float64(i) / float64(len(sizes))))
				g := &recordGen{r: r, t0: t0}
				raw.Reset()
				g.file(&raw, sizes[i])
				objs[i] = Object{
					Key:     g.key(t0),
					Body:    compress(raw.Bytes()),
					Raw:     int64(raw.Len()),
					Records: sizes[i],
				}
			}
		})
	}
	for i := range sizes {
		next <- i
	}
	close(next)
	wg.Wait()

	s := &Set{}
	for _, o := range objs {
		s.Unique += o.Records
	}
	// A second trail delivers copies of some files, a little later.
	if cfg.DupShare > 0 && cfg.DupShare < 1 {
		ndup := int(float64(len(objs)) * cfg.DupShare / (1 - cfg.DupShare))
		out := make([]Object, 0, len(objs)+ndup)
		pending := []Object{}
		dupEvery := float64(len(objs)) / float64(max(ndup, 1))
		made := 0
		for i, o := range objs {
			out = append(out, o)
			for made < ndup && float64(made)*dupEvery <= float64(i) {
				src := objs[plan.IntN(i+1)]
				c := src
				c.Key = fmt.Sprintf("org/%s_%d.json.gz", src.Key[:len(src.Key)-len(".json.gz")], made)
				c.Dup = true
				pending = append(pending, c)
				made++
			}
			// Copies arrive a few files later.
			if len(pending) > 0 && plan.IntN(3) == 0 {
				out = append(out, pending[0])
				pending = pending[1:]
			}
		}
		out = append(out, pending...)
		objs = out
	}
	s.Objects = objs
	for _, o := range objs {
		s.Records += o.Records
		s.Compressed += int64(len(o.Body))
		s.Raw += o.Raw
	}
	return s
}

func compress(b []byte) []byte {
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.DefaultCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return out.Bytes()
}

// WriteBig writes one gzip-compressed log file of at least rawBytes
// decompressed bytes to w, and returns the number of records and the
// decompressed size.
func WriteBig(w io.Writer, seed uint64, rawBytes int64) (records int, raw int64, err error) {
	zw, _ := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	r := rand.New(rand.NewPCG(seed, 0xb16))
	t0 := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	g := &recordGen{r: r, t0: t0}
	var buf bytes.Buffer
	buf.WriteString(`{"Records":[`)
	for raw+int64(buf.Len()) < rawBytes {
		if records > 0 {
			buf.WriteByte(',')
		}
		// One event every 100 ms: a big file still spans a day or so.
		g.t0 = t0.Add(time.Duration(records) * 100 * time.Millisecond)
		g.record(&buf)
		records++
		if buf.Len() > 1<<20 {
			raw += int64(buf.Len())
			if _, err := zw.Write(buf.Bytes()); err != nil {
				return records, raw, err
			}
			buf.Reset()
		}
	}
	buf.WriteString(`]}`)
	raw += int64(buf.Len())
	if _, err := zw.Write(buf.Bytes()); err != nil {
		return records, raw, err
	}
	return records, raw, zw.Close()
}

// WriteTiny writes one gzip-compressed log file of n records that carry
// only what pgtrail needs, an eventID and an eventTime, about 60 bytes
// each: the shape whose memory goes by rows rather than bytes. The same
// seed gives the same bytes; different seeds give different events.
func WriteTiny(w io.Writer, seed uint64, n int) (raw int64, err error) {
	zw, _ := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	t0 := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	buf.WriteString(`{"Records":[`)
	for i := range n {
		if i > 0 {
			buf.WriteByte(',')
		}
		t := t0.Add(time.Duration(i) * time.Millisecond)
		fmt.Fprintf(&buf, `{"eventID":"%08x-%08x","eventTime":"%s"}`, seed, i, t.Format("2006-01-02T15:04:05Z"))
		if buf.Len() > 1<<20 {
			raw += int64(buf.Len())
			if _, err := zw.Write(buf.Bytes()); err != nil {
				return raw, err
			}
			buf.Reset()
		}
	}
	buf.WriteString(`]}`)
	raw += int64(buf.Len())
	if _, err := zw.Write(buf.Bytes()); err != nil {
		return raw, err
	}
	return raw, zw.Close()
}

// recordGen writes the records of one file.
type recordGen struct {
	r       *rand.Rand
	t0      time.Time
	account string
	region  string
}

var (
	accounts = []string{"111122223333", "444455556666", "777788889999", "123456789012", "210987654321",
		"135792468013", "246813579024", "314159265358", "271828182845", "161803398874"}
	regions = []string{"us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1",
		"ap-southeast-2", "sa-east-1", "ca-central-1", "eu-north-1"}
	userAgents = []string{
		"aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79-99.164.amzn2023.x86_64 exe/x86_64.amzn.2023 prompt/off command/s3.cp",
		"aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/sts#1.28.6",
		"Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.210 md/arch#x86_64 lang/python#3.12.2 Botocore/1.34.69",
		"console.amazonaws.com",
		"[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.657 Linux/5.10.210-178.855.amzn2int.x86_64 OpenJDK_64-Bit_Server_VM/25.402-b08 java/1.8.0_402 vendor/Oracle_Corporation cfg/retry-mode/standard]",
		"Terraform/1.7.5 terraform-provider-aws/5.42.0 aws-sdk-go-v2/1.25.3 os/linux lang/go#1.21.8",
		"AWS Internal",
	}
)

// api is one kind of call: its service, name, and how big its parameters
// and response tend to be.
type api struct {
	source, name string
	readOnly     bool
	req, resp    int // typical sizes in bytes; 0 for null
	data         bool
}

// apis are weighted by repetition in weighted, built in init.
var apis = []api{
	{"sts.amazonaws.com", "AssumeRole", false, 300, 700, false},
	{"s3.amazonaws.com", "GetObject", true, 250, 0, true},
	{"s3.amazonaws.com", "PutObject", false, 280, 120, true},
	{"kms.amazonaws.com", "Decrypt", true, 220, 0, false},
	{"kms.amazonaws.com", "GenerateDataKey", true, 260, 0, false},
	{"ec2.amazonaws.com", "DescribeInstances", true, 180, 0, false},
	{"ec2.amazonaws.com", "RunInstances", false, 2800, 8400, false},
	{"ec2.amazonaws.com", "DescribeSecurityGroups", true, 120, 0, false},
	{"logs.amazonaws.com", "CreateLogStream", false, 160, 0, false},
	{"dynamodb.amazonaws.com", "GetItem", true, 200, 0, true},
	{"lambda.amazonaws.com", "Invoke", false, 180, 0, true},
	{"lambda.amazonaws.com", "UpdateFunctionConfiguration20150331v2", false, 900, 2500, false},
	{"iam.amazonaws.com", "PutRolePolicy", false, 5200, 0, false},
	{"iam.amazonaws.com", "GetRole", true, 60, 0, false},
	{"iam.amazonaws.com", "CreateAccessKey", false, 50, 300, false},
	{"secretsmanager.amazonaws.com", "GetSecretValue", true, 110, 0, false},
	{"ssm.amazonaws.com", "GetParameters", true, 140, 0, false},
	{"ssm.amazonaws.com", "UpdateInstanceInformation", false, 500, 0, false},
	{"sqs.amazonaws.com", "SendMessage", false, 160, 0, true},
	{"cloudformation.amazonaws.com", "DescribeStacks", true, 90, 0, false},
	{"cloudformation.amazonaws.com", "CreateStack", false, 7600, 300, false},
	{"signin.amazonaws.com", "ConsoleLogin", false, 0, 40, false},
	{"ecr.amazonaws.com", "GetAuthorizationToken", true, 40, 0, false},
	{"ecs.amazonaws.com", "RegisterTaskDefinition", false, 4800, 6200, false},
	{"s3.amazonaws.com", "PutBucketPolicy", false, 1500, 0, false},
	{"config.amazonaws.com", "PutEvaluations", false, 800, 60, false},
	{"monitoring.amazonaws.com", "GetMetricData", true, 600, 0, false},
	{"elasticloadbalancing.amazonaws.com", "DescribeTargetHealth", true, 120, 0, false},
	{"autoscaling.amazonaws.com", "DescribeAutoScalingGroups", true, 70, 0, false},
	{"route53.amazonaws.com", "ChangeResourceRecordSets", false, 700, 260, false},
}

var weighted []int

func init() {
	for i, a := range apis {
		w := 1
		switch {
		case a.readOnly && a.req < 300:
			w = 6 // frequent small reads
		case a.req > 4000:
			w = 1
		default:
			w = 3
		}
		for range w {
			weighted = append(weighted, i)
		}
	}
}

func (g *recordGen) key(t time.Time) string {
	return fmt.Sprintf("AWSLogs/%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%sZ_%s.json.gz",
		g.account, g.region, t.Format("2006/01/02"), g.account, g.region, t.Format("20060102T1504"), g.hex(8))
}

func (g *recordGen) file(w *bytes.Buffer, n int) {
	g.account = accounts[g.r.IntN(len(accounts))]
	g.region = regions[g.r.IntN(len(regions))]
	t0 := g.t0
	w.WriteString(`{"Records":[`)
	for i := range n {
		if i > 0 {
			w.WriteByte(',')
		}
		// Events of a file span its five minutes.
		g.t0 = t0.Add(time.Duration(g.r.Int64N(int64(5 * time.Minute))))
		g.record(w)
	}
	w.WriteString(`]}`)
	g.t0 = t0
}

func (g *recordGen) hex(n int) string {
	var b [32]byte
	for i := 0; i < n; i += 8 {
		v := g.r.Uint64()
		for k := 0; k < 8 && i+k < n; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return hex.EncodeToString(b[:n])
}

func (g *recordGen) uuid() string {
	h := g.hex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// str writes a JSON string of text that needs no escaping.
func str(w *bytes.Buffer, s string) {
	w.WriteByte('"')
	w.WriteString(s)
	w.WriteByte('"')
}

func (g *recordGen) record(w *bytes.Buffer) {
	r := g.r
	a := apis[weighted[r.IntN(len(weighted))]]
	account := g.account
	if account == "" {
		account = accounts[r.IntN(len(accounts))]
	}
	region := g.region
	if region == "" || r.IntN(10) == 0 {
		region = regions[r.IntN(len(regions))]
	}
	w.WriteString(`{"eventVersion":"1.09","userIdentity":`)
	g.identity(w, account)
	w.WriteString(`,"eventTime":`)
	str(w, g.t0.Format("2006-01-02T15:04:05Z"))
	w.WriteString(`,"eventSource":`)
	str(w, a.source)
	w.WriteString(`,"eventName":`)
	str(w, a.name)
	w.WriteString(`,"awsRegion":`)
	str(w, region)
	w.WriteString(`,"sourceIPAddress":`)
	if r.IntN(5) == 0 {
		str(w, "AWS Internal")
	} else {
		str(w, fmt.Sprintf("%d.%d.%d.%d", 3+r.IntN(200), r.IntN(256), r.IntN(256), 1+r.IntN(254)))
	}
	w.WriteString(`,"userAgent":`)
	str(w, userAgents[r.IntN(len(userAgents))])
	failed := r.IntN(20) == 0
	if failed {
		w.WriteString(`,"errorCode":"AccessDenied","errorMessage":"User: arn:aws:sts::` + account +
			`:assumed-role/ci-deploy/session is not authorized to perform: ` + a.name + ` on resource because no identity-based policy allows the action"`)
	}
	w.WriteString(`,"requestParameters":`)
	g.blob(w, a.req)
	w.WriteString(`,"responseElements":`)
	if failed {
		w.WriteString("null")
	} else {
		g.blob(w, a.resp)
	}
	if a.data {
		w.WriteString(`,"additionalEventData":{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":0,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"`)
		w.WriteString(g.hex(24))
		w.WriteString(`"}`)
	}
	w.WriteString(`,"requestID":`)
	str(w, g.uuid())
	w.WriteString(`,"eventID":`)
	str(w, g.uuid())
	w.WriteString(`,"readOnly":`)
	w.WriteString(strconv.FormatBool(a.readOnly))
	if a.data || r.IntN(8) == 0 {
		w.WriteString(`,"resources":[{"accountId":"` + account + `","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::data-` + g.hex(4) + `"}]`)
	}
	w.WriteString(`,"eventType":"AwsApiCall","managementEvent":`)
	w.WriteString(strconv.FormatBool(!a.data))
	w.WriteString(`,"recipientAccountId":`)
	str(w, account)
	if r.IntN(4) == 0 {
		w.WriteString(`,"vpcEndpointId":"vpce-` + g.hex(8) + `"`)
	}
	if a.data {
		w.WriteString(`,"eventCategory":"Data"`)
	} else {
		w.WriteString(`,"eventCategory":"Management"`)
	}
	if r.IntN(2) == 0 {
		w.WriteString(`,"tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"`)
		w.WriteString(a.source)
		w.WriteString(`"}`)
	}
	w.WriteByte('}')
}

func (g *recordGen) identity(w *bytes.Buffer, account string) {
	r := g.r
	switch k := r.IntN(10); {
	case k < 6:
		role := []string{"ci-deploy", "app-backend", "data-pipeline", "OrganizationAccountAccessRole", "AWSReservedSSO_Admin_0123456789abcdef", "lambda-exec"}[r.IntN(6)]
		session := "session-" + g.hex(6)
		pid := "AROA" + g.hex(8)
		w.WriteString(`{"type":"AssumedRole","principalId":"` + pid + `:` + session + `","arn":"arn:aws:sts::` + account +
			`:assumed-role/` + role + `/` + session + `","accountId":"` + account + `","accessKeyId":"ASIA` + g.hex(8) +
			`","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"` + pid + `","arn":"arn:aws:iam::` + account +
			`:role/` + role + `","accountId":"` + account + `","userName":"` + role +
			`"},"attributes":{"creationDate":"` + g.t0.Add(-time.Hour).Format("2006-01-02T15:04:05Z") +
			`","mfaAuthenticated":"` + strconv.FormatBool(r.IntN(5) == 0) + `"}}`)
		if r.IntN(4) == 0 {
			w.WriteString(`,"invokedBy":"cloudformation.amazonaws.com"`)
		}
		w.WriteByte('}')
	case k < 8:
		user := []string{"alice", "bob", "carol", "deploy-bot", "backup"}[r.IntN(5)]
		w.WriteString(`{"type":"IAMUser","principalId":"AIDA` + g.hex(8) + `","arn":"arn:aws:iam::` + account + `:user/` + user +
			`","accountId":"` + account + `","accessKeyId":"AKIA` + g.hex(8) + `","userName":"` + user + `"}`)
	case k < 9:
		svc := []string{"config.amazonaws.com", "autoscaling.amazonaws.com", "elasticloadbalancing.amazonaws.com"}[r.IntN(3)]
		w.WriteString(`{"type":"AWSService","invokedBy":"` + svc + `"}`)
	default:
		w.WriteString(`{"type":"Root","principalId":"` + account + `","arn":"arn:aws:iam::` + account + `:root","accountId":"` + account +
			`","accessKeyId":"","sessionContext":{"attributes":{"creationDate":"` + g.t0.Add(-10*time.Minute).Format("2006-01-02T15:04:05Z") +
			`","mfaAuthenticated":"true"}}}`)
	}
}

// blob writes a JSON object of about size bytes (null when size is 0),
// varying the size from a twelfth to a third of it.
func (g *recordGen) blob(w *bytes.Buffer, size int) {
	r := g.r
	if size == 0 || r.IntN(12) == 0 {
		w.WriteString("null")
		return
	}
	target := size/12 + r.IntN(size/4+1)
	start := w.Len()
	w.WriteString(`{"bucketName":"data-` + g.hex(4) + `"`)
	for i := 0; w.Len()-start < target; i++ {
		switch i % 4 {
		case 0:
			w.WriteString(`,"key` + strconv.Itoa(i) + `":"prefix/` + g.hex(10) + `/object.parquet"`)
		case 1:
			w.WriteString(`,"count` + strconv.Itoa(i) + `":` + strconv.Itoa(r.IntN(100000)))
		case 2:
			w.WriteString(`,"tags` + strconv.Itoa(i) + `":[{"key":"team","value":"platform"},{"key":"env","value":"prod"}]`)
		case 3:
			w.WriteString(`,"nested` + strconv.Itoa(i) + `":{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::data-` + g.hex(4) + `/*"}`)
		}
	}
	w.WriteByte('}')
}
