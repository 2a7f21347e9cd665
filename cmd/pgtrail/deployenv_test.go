package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sethvargo/go-envconfig"
	"gopkg.in/yaml.v3"
)

// deployDir is the repository's deploy/ seen from this package.
const deployDir = "../../deploy"

// awsSDKEnv are the environment variables the AWS SDK for Go v2 reads
// itself (config/env_config.go and friends); the deployment files may set
// them beside Config's. AWS_ENDPOINT_URL_<SERVICE> is accepted too.
var awsSDKEnv = map[string]bool{
	"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true,
	"AWS_REGION": true, "AWS_DEFAULT_REGION": true, "AWS_PROFILE": true, "AWS_DEFAULT_PROFILE": true,
	"AWS_CONFIG_FILE": true, "AWS_SHARED_CREDENTIALS_FILE": true,
	"AWS_ENDPOINT_URL": true, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": true,
	"AWS_ROLE_ARN": true, "AWS_ROLE_SESSION_NAME": true, "AWS_WEB_IDENTITY_TOKEN_FILE": true,
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": true, "AWS_CONTAINER_CREDENTIALS_FULL_URI": true,
	"AWS_CONTAINER_AUTHORIZATION_TOKEN": true, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": true,
	"AWS_EC2_METADATA_DISABLED": true, "AWS_EC2_METADATA_V1_DISABLED": true,
	"AWS_EC2_METADATA_SERVICE_ENDPOINT": true, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": true,
	"AWS_MAX_ATTEMPTS": true, "AWS_RETRY_MODE": true, "AWS_DEFAULTS_MODE": true,
	"AWS_USE_FIPS_ENDPOINT": true, "AWS_USE_DUALSTACK_ENDPOINT": true, "AWS_CA_BUNDLE": true,
	"AWS_ACCOUNT_ID": true, "AWS_ACCOUNT_ID_ENDPOINT_MODE": true, "AWS_SDK_UA_APP_ID": true,
	"AWS_REQUEST_CHECKSUM_CALCULATION": true, "AWS_RESPONSE_CHECKSUM_VALIDATION": true,
	"AWS_S3_USE_ARN_REGION": true, "AWS_S3_DISABLE_MULTIREGION_ACCESS_POINTS": true,
}

// configEnv returns the variables Config reads, from its env tags.
func configEnv(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for name := range variables {
		names[name] = true
	}
	if len(names) < 10 {
		t.Fatalf("found only %d env tags on Config", len(names))
	}
	return names
}

// envSet is the environment one deployment file gives one pgtrail container.
type envSet struct {
	where string
	vars  map[string]string
	// extra lets a container set variables of its own image (Postgres's).
	extra func(name string) bool
	// pgtrail says the container runs pgtrail, whose config must load.
	pgtrail bool
}

// TestDeploymentEnvIsConfig checks that every environment variable that
// docker-compose.yml, the ECS task definition and the Kubernetes manifests
// set is one pgtrail reads (Config's env tags) or one the AWS SDK reads, and
// that pgtrail's configuration loads from each of them.
func TestDeploymentEnvIsConfig(t *testing.T) {
	t.Parallel()
	known := configEnv(t)
	sets := append(append(composeEnv(t), ecsEnv(t)...), kubernetesEnv(t)...)
	if len(sets) < 6 {
		t.Fatalf("found only %d environments in the deployment files", len(sets))
	}
	for _, s := range sets {
		names := make([]string, 0, len(s.vars))
		for name := range s.vars {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			ok := known[name] || awsSDKEnv[name] || strings.HasPrefix(name, "AWS_ENDPOINT_URL_") || (s.extra != nil && s.extra(name))
			if !ok {
				t.Errorf("%s sets %s, which neither pgtrail's Config nor the AWS SDK reads", s.where, name)
			}
		}
		if !s.pgtrail {
			continue
		}
		vars := map[string]string{"DATABASE_URL": "postgres://placeholder/pgtrail"}
		for k, v := range s.vars {
			vars[k] = v
		}
		cfg, err := loadConfig(t.Context(), envconfig.MapLookuper(vars))
		if err != nil {
			t.Errorf("%s: pgtrail's configuration does not load: %v", s.where, err)
			continue
		}
		if cfg.QueueURL == "" {
			t.Errorf("%s: SQS_QUEUE_URL is not set", s.where)
		}
		if cfg.HTTPAddr != ":9090" {
			t.Errorf("%s: PGTRAIL_HTTP_ADDR = %q, want :9090, where the probes and the metrics port look", s.where, cfg.HTTPAddr)
		}
	}
}

// composeEnv reads every service's environment from docker-compose.yml.
func composeEnv(t *testing.T) []envSet {
	t.Helper()
	var compose struct {
		Services map[string]struct {
			Image       string `yaml:"image"`
			Build       any    `yaml:"build"`
			Command     any    `yaml:"command"`
			Environment any    `yaml:"environment"`
		} `yaml:"services"`
	}
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	var sets []envSet
	for name, svc := range compose.Services {
		s := envSet{where: "docker-compose.yml service " + name, vars: map[string]string{}}
		switch env := svc.Environment.(type) {
		case map[string]any:
			for k, v := range env {
				s.vars[k] = fmt.Sprint(v)
			}
		case []any: // KEY=value items
			for _, item := range env {
				k, v, _ := strings.Cut(fmt.Sprint(item), "=")
				s.vars[k] = v
			}
		case nil:
		default:
			t.Fatalf("%s: environment is a %T", s.where, env)
		}
		if strings.HasPrefix(svc.Image, "postgres:") {
			s.extra = func(name string) bool { return strings.HasPrefix(name, "POSTGRES_") || name == "PGDATA" }
		}
		if build, ok := svc.Build.(map[string]any); ok && build["target"] == "pgtrail" {
			s.pgtrail = fmt.Sprint(svc.Command) == "[run]"
		}
		sets = append(sets, s)
	}
	return sets
}

// ecsEnv reads the container environments and secrets of the ECS task
// definition.
func ecsEnv(t *testing.T) []envSet {
	t.Helper()
	var td struct {
		ContainerDefinitions []struct {
			Name        string
			Command     []string
			Environment []struct{ Name, Value string }
			Secrets     []struct{ Name, ValueFrom string }
		}
	}
	b, err := os.ReadFile(filepath.Join(deployDir, "ecs/task-definition.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &td); err != nil {
		t.Fatalf("task-definition.json: %v", err)
	}
	var sets []envSet
	for _, c := range td.ContainerDefinitions {
		s := envSet{where: "ecs/task-definition.json container " + c.Name, vars: map[string]string{}, pgtrail: true}
		for _, e := range c.Environment {
			s.vars[e.Name] = e.Value
		}
		for _, e := range c.Secrets {
			// The value is fetched at start; DATABASE_URL gets a placeholder.
			s.vars[e.Name] = "postgres://from-secret/pgtrail"
		}
		sets = append(sets, s)
	}
	return sets
}

// kubernetesEnv reads the ConfigMaps (each key a variable, through envFrom)
// and the containers' env of every manifest. The example overlay's
// ConfigMap is a patch: its environment is the base's with the patch's keys
// on top.
func kubernetesEnv(t *testing.T) []envSet {
	t.Helper()
	var sets []envSet
	configMaps := map[string]map[string]string{} // by directory
	err := filepath.WalkDir(filepath.Join(deployDir, "kubernetes"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") || d.Name() == "kustomization.yaml" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(deployDir, path)
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var obj struct {
				Kind string            `yaml:"kind"`
				Data map[string]string `yaml:"data"`
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct {
								Name string `yaml:"name"`
								Env  []struct {
									Name  string `yaml:"name"`
									Value string `yaml:"value"`
								} `yaml:"env"`
							} `yaml:"containers"`
						} `yaml:"spec"`
					} `yaml:"template"`
				} `yaml:"spec"`
			}
			if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return fmt.Errorf("%s: %w", rel, err)
			}
			switch obj.Kind {
			case "ConfigMap":
				configMaps[filepath.Dir(rel)] = obj.Data
			case "Deployment":
				for _, c := range obj.Spec.Template.Spec.Containers {
					s := envSet{where: rel + " container " + c.Name, vars: map[string]string{}}
					for _, e := range c.Env {
						s.vars[e.Name] = e.Value
					}
					sets = append(sets, s)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	base := configMaps["kubernetes/base"]
	if base == nil {
		t.Fatal("no ConfigMap in kubernetes/base")
	}
	for dir, data := range configMaps {
		vars := map[string]string{}
		if dir != "kubernetes/base" {
			for k, v := range base {
				vars[k] = v
			}
		}
		for k, v := range data {
			vars[k] = v
		}
		sets = append(sets, envSet{where: dir + " ConfigMap", vars: vars, pgtrail: true})
	}
	return sets
}
