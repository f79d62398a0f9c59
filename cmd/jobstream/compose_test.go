package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/jobstream/jobstream/internal/config"
)

// TestDockerCompose checks docker-compose.yml for what Docker cannot check
// here: anonymous --dev access is not published beyond this machine,
// `docker compose down` leaves time for the documented drain, the image
// builds with go.mod's Go, and .dockerignore keeps what the build needs.
func TestDockerCompose(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Build struct {
				DockerfileInline string `yaml:"dockerfile_inline"`
			} `yaml:"build"`
			Command         []string          `yaml:"command"`
			Environment     map[string]string `yaml:"environment"`
			Ports           []string          `yaml:"ports"`
			StopGracePeriod string            `yaml:"stop_grace_period"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	js, ok := compose.Services["jobstream"]
	if !ok {
		t.Fatal("docker-compose.yml has no jobstream service")
	}

	if len(js.Command) == 0 || !slices.ContainsFunc(commands(), func(c command) bool { return c.name == js.Command[0] }) {
		t.Errorf("command %q is not a jobstream command", js.Command)
	}
	if slices.Contains(js.Command, "--dev") || js.Environment["JOBSTREAM_DEV"] == "true" {
		for _, p := range js.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("port %q publishes anonymous --dev access beyond this machine; bind it to 127.0.0.1", p)
			}
		}
	}

	// Inside the container serve must listen beyond its loopback, or the
	// published port reaches nothing; --dev alone listens on loopback
	// (issue 19), so the command says --addr explicitly.
	cfg := config.Default()
	if err := cfg.Set(js.Command[1:]); err != nil {
		t.Fatalf("command %q: %v", js.Command, err)
	}
	host, _, err := net.SplitHostPort(cfg.ListenAddr())
	if !slices.Contains(js.Command, "--addr") || err != nil || (host != "0.0.0.0" && host != "" && host != "::") {
		t.Errorf("command %q listens on %q inside the container: give --addr 0.0.0.0:8080, or Docker's port forwarding reaches nothing", js.Command, cfg.ListenAddr())
	}

	// SIGTERM drains: jobs get the shutdown grace, then open requests up
	// to 5 s (internal/server). Docker kills at stop_grace_period.
	grace := 10 * time.Second
	if v := js.Environment["JOBSTREAM_SHUTDOWN_GRACE"]; v != "" {
		if grace, err = time.ParseDuration(v); err != nil {
			t.Fatalf("JOBSTREAM_SHUTDOWN_GRACE: %v", err)
		}
	}
	stop, err := time.ParseDuration(js.StopGracePeriod)
	if err != nil {
		t.Fatalf("stop_grace_period %q: %v (Docker's default, 10s, is shorter than the drain)", js.StopGracePeriod, err)
	}
	if stop <= grace+5*time.Second {
		t.Errorf("stop_grace_period %s does not exceed the drain (shutdown grace %s + 5s)", stop, grace)
	}

	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	image := regexp.MustCompile(`(?m)^FROM golang:(\S+)`).FindStringSubmatch(js.Build.DockerfileInline)
	if goVersion == nil || image == nil || image[1] != string(goVersion[1]) {
		t.Errorf("the image builds with golang:%v but go.mod says go %s", image, goVersion)
	}
	if !strings.Contains(js.Build.DockerfileInline, "go build -trimpath -o /out/jobstream ./cmd/jobstream") {
		t.Error("the image does not build ./cmd/jobstream")
	}

	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	var patterns []string
	for _, line := range strings.Split(string(ignore), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	ignored := func(name string) bool {
		for _, p := range patterns {
			if ok, _ := filepath.Match(p, name); ok {
				return true
			}
		}
		return false
	}
	for _, need := range []string{"go.mod", "go.sum", "cmd", "internal", "migrations", "sql"} {
		if ignored(need) {
			t.Errorf(".dockerignore leaves %s out of the build context", need)
		}
	}
	for _, junk := range []string{".git", "bin"} {
		if !ignored(junk) {
			t.Errorf(".dockerignore does not leave %s out of the build context", junk)
		}
	}
}
