//! The `Examples:` sections of `--help`, one per subcommand. Plain text, so
//! the clap definitions stay readable; every example must run when pasted
//! (see `example_commands_are_never_wrapped`).

pub const ROOT_EXAMPLES: &str = "\
Examples:
  # Why do all my connections land on one pod?
  kubectl wsaffinity check svc/dev-websocket-server

  # The namespace's only Service, as JSON
  kubectl wsaffinity check -n dev -o json

  # What a finding means
  kubectl wsaffinity check --explain WSA030";

pub const CHECK_EXAMPLES: &str = "\
Examples:
  # A Service by name (svc/, service/ or a bare name)
  kubectl wsaffinity check svc/dev-websocket-server
  kubectl wsaffinity check dev-websocket-server -n dev

  # The Service behind an Ingress, or the one that selects a Deployment's pods
  kubectl wsaffinity check ingress/dev-websocket-server
  kubectl wsaffinity check deploy/dev-websocket-server

  # The namespace's only Service, with more columns; log every API call
  kubectl wsaffinity check -o wide -v

  # Machine-readable output (exit code 1 when a finding is an error)
  kubectl wsaffinity check svc/web -o json

  # The long explanation of a finding code, like rustc --explain
  kubectl wsaffinity check --explain WSA030";

pub const COMPLETION_EXAMPLES: &str = "\
Examples:
  # kubectl wsaffinity <TAB> (kubectl 1.26+): install the helper kubectl looks for on PATH
  kubectl wsaffinity completion kubectl > ~/.krew/bin/kubectl_complete-wsaffinity
  chmod +x ~/.krew/bin/kubectl_complete-wsaffinity

  # kubectl-wsaffinity <TAB> in bash (add the line to ~/.bashrc)
  source <(kubectl-wsaffinity completion bash)

  # zsh and fish
  kubectl-wsaffinity completion zsh > \"${fpath[1]}/_kubectl-wsaffinity\"
  kubectl-wsaffinity completion fish > ~/.config/fish/completions/kubectl-wsaffinity.fish";

pub const TEST_SERVICE_EXAMPLES: &str = "\
Examples:
  # Print the manifest: same selector and ports, sessionAffinity: None (no write)
  kubectl wsaffinity test-service svc/dev-websocket-server -n dev

  # Create it (the only write kubectl-wsaffinity makes; needs `create services`)
  kubectl wsaffinity test-service svc/dev-websocket-server -n dev --apply

  # Then compare: per pod, and through a URL that reaches it
  kubectl wsaffinity per-pod svc/dev-websocket-server-affinity-test -n dev
  kubectl wsaffinity spread svc/dev-websocket-server-affinity-test -n dev --url ws://HOST/

  # Remove it (only a Service labelled app.kubernetes.io/managed-by=kubectl-wsaffinity)
  kubectl wsaffinity test-service svc/dev-websocket-server -n dev --delete

  # Or apply the printed manifest yourself
  kubectl wsaffinity test-service svc/dev-websocket-server -n dev | kubectl apply -f -";

pub const SPREAD_EXAMPLES: &str = "\
Examples:
  # 5 clients x 4 connections through the target's Ingress URL
  kubectl wsaffinity spread svc/dev-websocket-server -n dev

  # A URL instead of a target (the same as --url); no cluster needed
  kubectl wsaffinity spread ws://websocket-dev.example.com/ --clients 10

  # A given URL without DNS (as curl --resolve), self-signed TLS
  kubectl wsaffinity spread wss://ws.example.com/ --resolve ws.example.com:443:192.0.2.10 -k

  # One client, 20 connections, cookies off: does the balancer spread them?
  kubectl wsaffinity spread ws://ws.example.com/ --clients 1 --connect 20 --no-cookies

  # Clients from several local addresses (for client-address hashing)
  kubectl wsaffinity spread --url ws://127.0.0.1:8080/ --source-ip 127.0.0.2 127.0.0.3 127.0.0.4

  # More clients than one machine makes: the same scenario for Artillery or k6
  kubectl wsaffinity spread svc/dev-websocket-server --clients 50 --emit artillery > test.yml
  kubectl wsaffinity spread wss://ws.example.com/ --emit k6 > test.js
  kubectl wsaffinity spread wss://ws.example.com/ --emit k6-operator > testrun.yaml";

pub const LOGS_EXAMPLES: &str = "\
Examples:
  # Open connections per pod of the namespace's only Service, with totals
  kubectl wsaffinity logs

  # Live: a table updated in place (plain `POD active=N` lines when piped)
  kubectl wsaffinity logs svc/dev-websocket-server --follow

  # Pods by label, a sidecar's log, another log format
  kubectl wsaffinity logs -l app=web -c server --pattern 'clients=(\\d+)'

  # Only lines of the last 10 minutes, as JSON
  kubectl wsaffinity logs --since 10m -o json

  # From each pod's Prometheus gauge instead of its log (one series of several)
  kubectl wsaffinity logs --metric 'socketio_connected{namespace=\"/chat\"}' --metrics-port 9090";

pub const PER_POD_EXAMPLES: &str = "\
Examples:
  # 10 connections to each ready pod of the namespace's only Service
  kubectl wsaffinity per-pod --connect 10

  # Two pods at a time, the not-ready pods too, a server that does not echo
  kubectl wsaffinity per-pod svc/dev-websocket-server --parallel 2 --all-pods --no-echo

  # Another port and path, held open for 30 s
  kubectl wsaffinity per-pod --port 8080 --path /ws --hold 30s

  # Cross-check the held connections with each pod's Prometheus gauge, not its log
  kubectl wsaffinity per-pod --metric websocket_active_connections --metrics-port 8080";
