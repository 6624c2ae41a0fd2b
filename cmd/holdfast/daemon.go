package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/holdfast/holdfast/internal/agent"
	"github.com/holdfast/holdfast/internal/agent/ctr/logfile"
	"github.com/holdfast/holdfast/internal/netguard"
	"github.com/holdfast/holdfast/internal/server"
	"github.com/holdfast/holdfast/internal/store/storecfg"
)

// Defaults of the command-line contract (DESIGN.md).
const (
	defaultListen      = "127.0.0.1:7420"
	defaultAgentListen = "127.0.0.1:51679"
	defaultDataDir     = "./.holdfast"
	defaultRegion      = "us-east-1"
	defaultAccount     = "000000000000"
)

type controlFlags struct {
	dataDir, listen, region, account string
	accessKey                        string
	secret                           secretFlags
	heartbeat                        time.Duration
	metricsPeriod                    time.Duration
	taskCredsDuration                time.Duration
	tlsCert, tlsKey                  string
	tlsSelfSigned                    bool
	rateLimits                       bool
	logLevel                         string
}

func (f *controlFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", defaultDataDir, "directory for the embedded store, logs and credentials")
	cmd.Flags().StringVar(&f.listen, "listen", defaultListen, "HOST:PORT of the ECS API (POST /) and GET /healthz")
	cmd.Flags().StringVar(&f.region, "region", defaultRegion, "region in ARNs and in the SigV4 scope")
	cmd.Flags().StringVar(&f.account, "account-id", defaultAccount, "account id in ARNs")
	cmd.Flags().StringVar(&f.accessKey, "access-key-id", "", "access key id clients sign with (else $HOLDFAST_ACCESS_KEY_ID, else generated)")
	f.secret.add(cmd, ", else generated")
	cmd.Flags().DurationVar(&f.heartbeat, "heartbeat-timeout", 30*time.Second, "mark an instance disconnected after this long without a heartbeat")
	cmd.Flags().BoolVar(&f.rateLimits, "ecs-rate-limits", false, "apply ECS's per-account API rate limits (ThrottlingException)")
	cmd.Flags().DurationVar(&f.metricsPeriod, "metrics-period", server.DefaultMetricsPeriod,
		"period of holdfast's own AWS/ECS metrics and of the alarms target tracking manages (AWS: 1m; tests use 1s)")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().DurationVar(&f.taskCredsDuration, "task-credentials-duration", server.DefaultTaskCredentialsDuration,
		"how long the task role sessions issued to agents last (agents refresh them half way)")
	_ = cmd.Flags().MarkHidden("task-credentials-duration") // for tests that watch credentials rotate
	cmd.Flags().StringVar(&f.tlsCert, "tls-cert", "", "serve --listen (the API and the agent protocol) over TLS with this PEM certificate (with --tls-key)")
	cmd.Flags().StringVar(&f.tlsKey, "tls-key", "", "the PEM private key of --tls-cert")
	cmd.Flags().BoolVar(&f.tlsSelfSigned, "tls-self-signed", false,
		"serve --listen over TLS with a self-signed certificate generated in <data-dir>/tls (clients trust it with AWS_CA_BUNDLE)")
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

type savedCredentials struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// credentials resolves the API credentials: flags, then the environment,
// then the data dir, else new ones saved there. generated reports the last.
func (f *controlFlags) credentials(log *slog.Logger) (id, secret string, generated bool, err error) {
	id = f.accessKey
	if id == "" {
		id = os.Getenv("HOLDFAST_ACCESS_KEY_ID")
	}
	if secret, err = f.secret.resolve(log); err != nil {
		return "", "", false, err
	}
	if id != "" && secret != "" {
		return id, secret, false, nil
	}
	if id != "" || secret != "" {
		return "", "", false, errors.New("give both an access key id and a secret access key, or neither")
	}
	path := filepath.Join(f.dataDir, "credentials.json")
	if b, err := os.ReadFile(path); err == nil {
		var c savedCredentials
		if err := json.Unmarshal(b, &c); err == nil && c.AccessKeyID != "" && c.SecretAccessKey != "" {
			return c.AccessKeyID, c.SecretAccessKey, false, nil
		}
	}
	var b [20]byte
	_, _ = rand.Read(b[:])
	c := savedCredentials{
		AccessKeyID:     "HF" + strings.ToUpper(hex.EncodeToString(b[:9])),
		SecretAccessKey: hex.EncodeToString(b[9:]) + randHex(12),
	}
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return "", "", false, err
	}
	data, _ := json.MarshalIndent(c, "", "  ")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", "", false, err
	}
	return c.AccessKeyID, c.SecretAccessKey, true, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (f *controlFlags) serverConfig(log *slog.Logger) (server.Config, bool, error) {
	if f.metricsPeriod < time.Second || f.metricsPeriod%time.Second != 0 {
		return server.Config{}, false, fmt.Errorf("--metrics-period %v: must be a whole number of seconds, at least 1s", f.metricsPeriod)
	}
	if f.taskCredsDuration < time.Second {
		return server.Config{}, false, fmt.Errorf("--task-credentials-duration %v: must be at least 1s", f.taskCredsDuration)
	}
	id, secret, generated, err := f.credentials(log)
	if err != nil {
		return server.Config{}, false, err
	}
	if f.tlsSelfSigned {
		if f.tlsCert != "" || f.tlsKey != "" {
			return server.Config{}, false, errors.New("--tls-self-signed or --tls-cert/--tls-key, not both")
		}
		var hosts []string
		if h, _, err := net.SplitHostPort(f.listen); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
			hosts = append(hosts, h)
		}
		if name, err := os.Hostname(); err == nil {
			hosts = append(hosts, name)
		}
		var created bool
		f.tlsCert, f.tlsKey, created, err = server.SelfSignedCertificate(filepath.Join(f.dataDir, "tls"), hosts)
		if err != nil {
			return server.Config{}, false, fmt.Errorf("self-signed certificate: %w", err)
		}
		if created {
			log.Info("generated a self-signed TLS certificate: clients trust it with AWS_CA_BUNDLE", "cert", f.tlsCert)
		}
	}
	for _, p := range []*string{&f.tlsCert, &f.tlsKey} {
		if *p != "" {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
		}
	}
	return server.Config{
		TLSCertFile:             f.tlsCert,
		TLSKeyFile:              f.tlsKey,
		TaskCredentialsDuration: f.taskCredsDuration,
		DataDir:                 f.dataDir,
		Listen:                  f.listen,
		Region:                  f.region,
		AccountID:               f.account,
		AccessKeyID:             id,
		SecretAccessKey:         secret,
		HeartbeatTimeout:        f.heartbeat,
		MetricsPeriod:           f.metricsPeriod,
		RateLimits:              f.rateLimits,
		Logger:                  log,
	}, generated, nil
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// shimArgv is how the runtime starts a container's shim: holdfast-shim
// next to this binary when it is there (small and fast to start), else this
// binary's own `shim` subcommand.
func shimArgv() []string {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	small := filepath.Join(filepath.Dir(exe), "holdfast-shim")
	if fi, err := os.Stat(small); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return []string{small}
	}
	return []string{exe, "shim"}
}

// logFlags are the container log cap flags of `holdfast up` and `holdfast
// agent`.
type logFlags struct {
	maxSize  string
	maxFiles int
}

func (l *logFlags) add(cmd *cobra.Command) {
	def := agent.DefaultLogLimits
	cmd.Flags().StringVar(&l.maxSize, "log-max-size", humanize.IBytes(uint64(def.MaxBytes)),
		"cap of each container log file, e.g. 10MiB, 512KiB or 0 for no cap; the log rotates when it is full")
	cmd.Flags().IntVar(&l.maxFiles, "log-max-files", def.MaxFiles,
		"log files kept per container, the current one included: at most log-max-size x log-max-files bytes of each container's output are on disk")
}

func (l *logFlags) limits() (logfile.Limits, error) {
	n, err := humanize.ParseBytes(l.maxSize)
	if err != nil || n > math.MaxInt64 {
		return logfile.Limits{}, fmt.Errorf("--log-max-size %q: want a size such as 10MiB", l.maxSize)
	}
	if l.maxFiles < 1 {
		return logfile.Limits{}, fmt.Errorf("--log-max-files %d: want 1 or more", l.maxFiles)
	}
	if n == 0 {
		return logfile.Limits{MaxBytes: -1}, nil // no cap
	}
	return logfile.Limits{MaxBytes: int64(n), MaxFiles: l.maxFiles}, nil
}

func upCmd() *cobra.Command {
	var f controlFlags
	var lf logFlags
	var agentListen, taskCreds string
	var attrs []string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the control plane and one local agent (the default way to run holdfast)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := newLogger(f.logLevel)
			logLimits, err := lf.limits()
			if err != nil {
				return err
			}
			cfg, generated, err := f.serverConfig(log)
			if err != nil {
				return err
			}
			cfg.DefaultCluster = "default"
			var protectAs aws.CredentialsProvider
			switch taskCreds {
			case "role":
			case "none":
				protectAs = credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")
				fmt.Fprintln(cmd.ErrOrStderr(), "WARNING: --task-credentials=none: the task endpoint calls ECS with the root's authority "+
					"for every task, whatever its task role. Use it for quick experiments only (docs/security.md).")
			default:
				return fmt.Errorf("--task-credentials %q: want role or none", taskCreds)
			}
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			if _, err := srv.Listen(); err != nil {
				return err
			}
			// The local agent has the agents' identity, not the root's.
			agentKey, agentSecret, _, err := srv.AgentCredentials(context.Background())
			if err != nil {
				return err
			}
			if err := saveEndpoint(f.dataDir, srv.URL(), cfg.TLSCertFile); err != nil {
				return err
			}
			ag, err := startAgent(agent.Config{
				Cluster:               "default",
				ServerURL:             srv.URL(),
				CABundle:              cfg.TLSCertFile,
				DataDir:               filepath.Join(f.dataDir, "agent"),
				Region:                f.region,
				AccessKeyID:           agentKey,
				SecretAccessKey:       agentSecret,
				LogLimits:             logLimits,
				ProtectionCredentials: protectAs,
				Logger:                log.With("part", "agent"),
			}, agentListen, attrs)
			if err != nil {
				return err
			}
			defer ag.stop()
			srv.ExtraReady = func() bool {
				select {
				case <-ag.Ready():
					return true
				default:
					return false
				}
			}
			ctx, cancel := signalContext()
			defer cancel()
			srvDone := make(chan error, 1)
			go func() { srvDone <- srv.Run(ctx) }()
			agDone := make(chan error, 1)
			go func() { agDone <- ag.Run(ctx) }()
			select {
			case <-ag.Ready():
				printBanner(cmd, srv.URL(), ag.addr, cfg, generated, f.dataDir)
			case err := <-srvDone:
				cancel()
				<-agDone
				return err
			case <-ctx.Done():
			}
			err = <-srvDone
			cancel()
			<-agDone
			fmt.Fprintln(cmd.ErrOrStderr(), "holdfast stopped. Running tasks keep running and are adopted by the next `holdfast up` on this data dir.")
			return err
		},
	}
	f.add(cmd)
	lf.add(cmd)
	cmd.Flags().StringVar(&agentListen, "agent-listen", defaultAgentListen, "HOST:PORT of the task endpoint (what ECS_AGENT_URI points at)")
	cmd.Flags().StringArrayVar(&attrs, "attribute", nil, "container-instance attribute NAME=VALUE for the local agent (repeatable), e.g. availability-zone=a")
	cmd.Flags().StringVar(&taskCreds, "task-credentials", "role",
		"role: the task endpoint calls ECS as each task's role, as on ECS (no role: 403); none: as the root, for every task (quick experiments)")
	return cmd
}

// localAgent is an agent with its task endpoint served on its listener.
type localAgent struct {
	*agent.Agent
	addr string
	http *netguard.Server
}

// startAgent listens on listen, builds the agent (cfg.Listen, Shim and
// Attributes are filled in here) and serves its task endpoint. The caller
// runs the agent and calls stop.
func startAgent(cfg agent.Config, listen string, attrs []string) (*localAgent, error) {
	attributes, err := parseAttributes(attrs)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	cfg.Listen = ln.Addr().String()
	cfg.Attributes = attributes
	cfg.Shim = shimArgv()
	ag, err := agent.New(cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	// The ECS agent's server timeouts (the endpoint's 4 s ECS budget fits),
	// and netguard's bounds on headers, bodies and connections.
	hs := ag.HTTPServer(agent.ListenerConfig{Logger: cfg.Logger})
	go func() { _ = hs.Serve(ln) }()
	return &localAgent{Agent: ag, addr: cfg.Listen, http: hs}, nil
}

// stop stops serving the task endpoint (the tasks keep running).
func (l *localAgent) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = l.http.Shutdown(ctx)
}

func printBanner(cmd *cobra.Command, apiURL, agentAddr string, cfg server.Config, generated bool, dataDir string) {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "holdfast is up.\n")
	fmt.Fprintf(w, "  AWS API:        %s   (GET /healthz, /metrics)\n", apiURL)
	fmt.Fprintf(w, "  task endpoint:  http://%s   (ECS_AGENT_URI for tasks)\n", agentAddr)
	fmt.Fprintf(w, "  data dir:       %s\n", dataDir)
	if generated {
		fmt.Fprintf(w, "  credentials:    generated and saved in %s\n", filepath.Join(dataDir, "credentials.json"))
	}
	fmt.Fprintf(w, "\nTo use the AWS CLI or an SDK against it, export:\n\n")
	fmt.Fprintf(w, "export AWS_ACCESS_KEY_ID=%s\n", cfg.AccessKeyID)
	fmt.Fprintf(w, "export AWS_SECRET_ACCESS_KEY=%s\n", cfg.SecretAccessKey)
	fmt.Fprintf(w, "export AWS_REGION=%s AWS_DEFAULT_REGION=%s\n", cfg.Region, cfg.Region)
	fmt.Fprintf(w, "export AWS_ENDPOINT_URL=%s\n", apiURL)
	fmt.Fprintf(w, "export AWS_ENDPOINT_URL_ECS=%s\n", apiURL)
	if cfg.TLSCertFile != "" {
		fmt.Fprintf(w, "export AWS_CA_BUNDLE=%s\n", cfg.TLSCertFile)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Then: aws ecs list-clusters   or   holdfast ps\n")
}

func parseAttributes(list []string) (map[string]string, error) {
	m := map[string]string{}
	for _, a := range list {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("attribute %q: want NAME=VALUE", a)
		}
		m[k] = v
	}
	return m, nil
}

func serverCmd() *cobra.Command {
	var f controlFlags
	var sc storecfg.Config
	var cluster string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane alone (agents connect with `holdfast agent`)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := newLogger(f.logLevel)
			cfg, generated, err := f.serverConfig(log)
			if err != nil {
				return err
			}
			cfg.DefaultCluster = cluster
			cfg.Store = sc
			cfg.Store.DataDir = f.dataDir
			if err := cfg.Store.Validate(); err != nil {
				return err
			}
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			_, err = srv.Listen()
			if err != nil {
				return err
			}
			agentKey, _, agentCreated, err := srv.AgentCredentials(context.Background())
			if err != nil {
				return err
			}
			agentFile := filepath.Join(f.dataDir, server.AgentCredentialsFile)
			if agentCreated {
				fmt.Fprintf(cmd.OutOrStdout(), "agents' credentials (access key %s) saved in %s: give them to `holdfast agent --credentials-file`\n",
					agentKey, agentFile)
			} else {
				log.Info("agents' credentials", "file", agentFile, "accessKeyId", agentKey)
			}
			ctx, cancel := signalContext()
			defer cancel()
			log.Info("control plane listening", "api", srv.URL(), "data-dir", f.dataDir, "store", cfg.Store.String())
			if generated {
				fmt.Fprintf(cmd.OutOrStdout(), "generated credentials (saved in %s):\nexport AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\n",
					filepath.Join(f.dataDir, "credentials.json"), cfg.AccessKeyID, cfg.SecretAccessKey)
			}
			return srv.Run(ctx)
		},
	}
	f.add(cmd)
	sc.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&cluster, "create-cluster", "default", "create this cluster at start (\"\" for none)")
	return cmd
}

func agentCmd() *cobra.Command {
	var cluster, serverURL, listen, dataDir, region, accessKey, logLevel, credsFile, caBundle string
	var secret secretFlags
	var attrs []string
	var lf logFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node agent that registers with a control plane and runs tasks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := newLogger(logLevel)
			logLimits, err := lf.limits()
			if err != nil {
				return err
			}
			if accessKey == "" {
				accessKey = os.Getenv("HOLDFAST_ACCESS_KEY_ID")
			}
			secretKey, err := secret.resolve(log)
			if err != nil {
				return err
			}
			if (accessKey == "" || secretKey == "") && credsFile != "" {
				b, err := os.ReadFile(credsFile)
				if err != nil {
					return err
				}
				var c savedCredentials
				if err := json.Unmarshal(b, &c); err != nil {
					return fmt.Errorf("%s: %w", credsFile, err)
				}
				accessKey, secretKey = c.AccessKeyID, c.SecretAccessKey
			}
			if accessKey == "" || secretKey == "" {
				return errors.New("the agent needs the agents' credentials (agent-credentials.json in the control plane's data dir): " +
					"--credentials-file, or --access-key-id or $HOLDFAST_ACCESS_KEY_ID with --secret-access-key-file, $HOLDFAST_SECRET_ACCESS_KEY_FILE or $HOLDFAST_SECRET_ACCESS_KEY")
			}
			ag, err := startAgent(agent.Config{
				Cluster:         cluster,
				ServerURL:       strings.TrimRight(serverURL, "/"),
				CABundle:        caBundle,
				DataDir:         dataDir,
				Region:          region,
				AccessKeyID:     accessKey,
				SecretAccessKey: secretKey,
				LogLimits:       logLimits,
				Logger:          log,
			}, listen, attrs)
			if err != nil {
				return err
			}
			defer ag.stop()
			ctx, cancel := signalContext()
			defer cancel()
			log.Info("agent task endpoint listening", "addr", ag.addr)
			return ag.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "default", "cluster to register with")
	cmd.Flags().StringVar(&serverURL, "server", "http://"+defaultListen, "control plane API URL (https:// when it serves TLS)")
	cmd.Flags().StringVar(&caBundle, "ca-bundle", os.Getenv("AWS_CA_BUNDLE"),
		"PEM certificates to trust for the control plane besides the system's (its self-signed certificate); default $AWS_CA_BUNDLE")
	cmd.Flags().StringVar(&listen, "listen", defaultAgentListen, "HOST:PORT of the task endpoint (what ECS_AGENT_URI points at)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "./.holdfast-agent", "directory for task records, logs and runtime state")
	cmd.Flags().StringVar(&region, "region", defaultRegion, "region the control plane signs for")
	cmd.Flags().StringVar(&accessKey, "access-key-id", "", "the agents' access key id (else $HOLDFAST_ACCESS_KEY_ID, else --credentials-file)")
	cmd.Flags().StringVar(&credsFile, "credentials-file", "",
		"the agents' credentials: a copy of agent-credentials.json from the control plane's data dir (keep it mode 0600)")
	secret.add(cmd, "")
	cmd.Flags().StringArrayVar(&attrs, "attribute", nil, "container-instance attribute NAME=VALUE (repeatable), e.g. availability-zone=a")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	lf.add(cmd)
	return cmd
}

func envCmd() *cobra.Command {
	var dataDir, listen, region string
	cmd := &cobra.Command{
		Use:   "env",
		Short: "Print the environment for the AWS CLI and SDKs: eval \"$(holdfast env)\"",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// The root's keys, when holdfast up generated and saved them;
			// given as flags or environment, they are not repeated here.
			var c savedCredentials
			b, err := os.ReadFile(filepath.Join(dataDir, "credentials.json"))
			if err == nil {
				err = json.Unmarshal(b, &c)
			}
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if c.AccessKeyID == "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "# no credentials.json in %s: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY yourself\n", dataDir)
			}
			url, ca := "http://"+listen, ""
			if !cmd.Flags().Changed("listen") {
				// What the running (or last) holdfast up serves.
				if e, err := readEndpoint(dataDir); err == nil {
					url, ca = e.URL, e.CABundle
				}
			}
			w := cmd.OutOrStdout()
			if c.AccessKeyID != "" {
				fmt.Fprintf(w, "export AWS_ACCESS_KEY_ID=%s\n", c.AccessKeyID)
				fmt.Fprintf(w, "export AWS_SECRET_ACCESS_KEY=%s\n", c.SecretAccessKey)
			}
			fmt.Fprintf(w, "export AWS_REGION=%s AWS_DEFAULT_REGION=%s\n", region, region)
			fmt.Fprintf(w, "export AWS_ENDPOINT_URL=%s\n", url)
			fmt.Fprintf(w, "export AWS_ENDPOINT_URL_ECS=%s\n", url)
			if ca != "" {
				fmt.Fprintf(w, "export AWS_CA_BUNDLE=%s\n", ca)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultDataDir, "data dir of 'holdfast up' (holds credentials.json)")
	cmd.Flags().StringVar(&listen, "listen", defaultListen, "the API address holdfast up listens on (default: what it saved in the data dir)")
	cmd.Flags().StringVar(&region, "region", defaultRegion, "region")
	return cmd
}

// endpointFile is what `holdfast up` saves of the API it serves, for
// `holdfast env`.
type endpointFile struct {
	URL      string `json:"url"`
	CABundle string `json:"caBundle,omitempty"`
}

func saveEndpoint(dataDir, url, caBundle string) error {
	if caBundle != "" {
		if abs, err := filepath.Abs(caBundle); err == nil {
			caBundle = abs
		}
	}
	b, _ := json.MarshalIndent(endpointFile{URL: url, CABundle: caBundle}, "", "  ")
	return os.WriteFile(filepath.Join(dataDir, "endpoint.json"), b, 0o644)
}

func readEndpoint(dataDir string) (endpointFile, error) {
	var e endpointFile
	b, err := os.ReadFile(filepath.Join(dataDir, "endpoint.json"))
	if err == nil {
		err = json.Unmarshal(b, &e)
	}
	return e, err
}
