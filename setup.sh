#!/usr/bin/env bash
# Sealmail on this host: the menu, or unattended with flags. Run as root from a clone of the
# repository:
#   ./setup.sh                                   # menu
#   ./setup.sh --action setup --domain example.com --email you@example.com --cert-method http --yes
#   DEBUG=true ./setup.sh ...                    # verbose (shell trace and ansible -vv)
# Inputs may also come from the environment (DOMAIN, EMAIL, AUTH_BASIC_USERNAME,
# AUTH_BASIC_PASSWORD, SEALMAIL_CERT_METHOD), and /etc/profile.d/env.sh is read when it exists
# (cloud-init writes it).
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_FILE=${SEALMAIL_SETUP_LOG:-/var/log/sealmail-setup.log}
SUMMARY_FILE=${SEALMAIL_SUMMARY_FILE:-/root/sealmail-summary.txt}
VENV=${SEALMAIL_CONTROLLER_VENV:-$REPO_DIR/.venv-deploy}
# Overridable for the tests of this script.
OS_RELEASE=${SEALMAIL_OS_RELEASE:-/etc/os-release}
MEMINFO=${SEALMAIL_MEMINFO:-/proc/meminfo}
MIN_RAM_MB=1024
MIN_DISK_GB=${SEALMAIL_MIN_DISK_GB:-10}
# Checked for other programs before Sealmail is installed (so it cannot be asked yet): the
# default public ports of its components (`sealmail components --json` once installed).
MAIL_PORTS=(25 80 443 465 587 993 995 4000 5000 6000)
CLOUDFLARE_INI=${SEALMAIL_CLOUDFLARE_INI:-/root/.cloudflare.ini}

DEBUG=${DEBUG:-false}
if [ "$DEBUG" = true ]; then set -x; fi

action="" domain="" email="" cert_method="" assume_yes=false
# Backups: the S3 secret key comes from the environment (S3_SECRET_KEY) or a hidden prompt, never argv.
s3_endpoint="" s3_bucket="" s3_access_key="" backup_public_key="" backup_manifest_key="" backup_key_file="" backup_run=""
# Automatic upgrades install only what these verify (at least one is needed).
upgrade_signers="" upgrade_pin=""

die() { echo "setup.sh: $*" >&2; exit 1; }
warn() { echo "setup.sh: warning: $*" >&2; }
info() { echo "==> $*"; }

usage() {
    cat <<'EOF'
Usage: setup.sh [--action setup|renew|backups|upgrades|restore|check|help|exit] [--domain DOMAIN]
                [--email EMAIL] [--cert-method cloudflare|http|selfsigned] [--yes] [--help]
                [--s3-endpoint URL --s3-bucket NAME --s3-access-key ID] [--backup-public-key KEY]
                [--backup-manifest-key KEY] [--backup-key-file FILE] [--backup-run RUN]
                [--upgrade-signers FILE] [--upgrade-pin COMMIT]

  --action       what to do without the menu: setup (Initial setup), renew (Renew certificates),
                 backups (Setup Backups), upgrades (Setup Auto Upgrades), restore (Restore from Backup),
                 check (only the preflight checks), help, exit
  --domain       the domain mail is hosted for (DOMAIN); the host answers as mail.<domain>
  --email        address for certificate expiry notices (EMAIL)
  --cert-method  cloudflare: DNS-01 with /root/.cloudflare.ini (dns_cloudflare_api_token = ...,
                             the token quoted or not)
                 http:       HTTP-01 on port 80 (the A records must already point here)
                 selfsigned: a local CA (tests, private networks)
                 default: SEALMAIL_CERT_METHOD from the environment or /etc/profile.d/env.sh
                 (how cloud-init chooses), else cloudflare when /root/.cloudflare.ini exists,
                 else http
  --yes          do not ask for confirmation
  --s3-endpoint, --s3-bucket, --s3-access-key
                 where encrypted backups go (S3-compatible); the secret key: S3_SECRET_KEY=... in
                 the environment, or asked for
  --backup-public-key
                 the operator backup public key (empty: a key pair is made, its private key shown once)
  --backup-manifest-key
                 the manifest key printed with that key pair (`sealmail backup manifest-key
                 --key-file FILE` prints it from the private key); restore trusts only manifests it signed
  --backup-key-file
                 restore: the file holding the operator backup private key
  --backup-run   restore: which backup (default: the latest)
  --upgrade-signers, --upgrade-pin
                 upgrades: what the nightly upgrade may install. Without one of them there is no
                 automatic upgrade (it would run unverified code as root).
                 --upgrade-signers FILE: an SSH allowed-signers file (ssh-keygen(1) ALLOWED
                   SIGNERS) of the release signing keys; a commit (or the annotated tag followed)
                   is installed only with a good signature by one of them
                 --upgrade-pin COMMIT: the full 40-digit id of the one commit to install (one you
                   reviewed); the host upgrades to it once and stays there
  DEBUG=true     verbose output

Logs: /var/log/sealmail-setup.log. Settings: /etc/sealmail/sealmail.env (keep a copy).
EOF
}

help_text() {
    usage
    cat <<'EOF'

After setup:
  systemctl status 'sealmail-*'           what is running
  journalctl -u sealmail-mx               logs of one component
  cat /etc/sealmail/dns-records.txt       the DNS records to create
  sudo sealmail alias add me@DOMAIN --password
More in README.md, "Deployment".
EOF
}

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --action) action=${2:-}; shift 2 ;;
            --action=*) action=${1#*=}; shift ;;
            --domain) domain=${2:-}; shift 2 ;;
            --domain=*) domain=${1#*=}; shift ;;
            --email) email=${2:-}; shift 2 ;;
            --email=*) email=${1#*=}; shift ;;
            --cert-method) cert_method=${2:-}; shift 2 ;;
            --cert-method=*) cert_method=${1#*=}; shift ;;
            --s3-endpoint) s3_endpoint=${2:-}; shift 2 ;;
            --s3-bucket) s3_bucket=${2:-}; shift 2 ;;
            --s3-access-key) s3_access_key=${2:-}; shift 2 ;;
            --backup-public-key) backup_public_key=${2:-}; shift 2 ;;
            --backup-manifest-key) backup_manifest_key=${2:-}; shift 2 ;;
            --backup-key-file) backup_key_file=${2:-}; shift 2 ;;
            --backup-run) backup_run=${2:-}; shift 2 ;;
            --upgrade-signers) upgrade_signers=${2:-}; shift 2 ;;
            --upgrade-pin) upgrade_pin=${2:-}; shift 2 ;;
            -y|--yes) assume_yes=true; shift ;;
            -h|--help) usage; exit 0 ;;
            *) usage >&2; die "unknown option: $1" ;;
        esac
    done
    case "$action" in
        ""|setup|renew|backups|upgrades|restore|check|help|exit) ;;
        *) die "--action must be setup, renew, backups, upgrades, restore, check, help or exit, not '$action'" ;;
    esac
    check_cert_method "--cert-method"
    check_upgrade_pinning
}

check_upgrade_pinning() {
    if [ -n "$upgrade_pin" ] && ! [[ "$upgrade_pin" =~ ^[0-9a-fA-F]{40}([0-9a-fA-F]{24})?$ ]]; then
        die "--upgrade-pin must be a full commit id (40 hex digits), not '$upgrade_pin'"
    fi
    if [ -n "$upgrade_signers" ] && ! grep -q -E '^[^#[:space:]].* (ssh-|ecdsa-|sk-)' "$upgrade_signers" 2>/dev/null; then
        die "--upgrade-signers: $upgrade_signers is not a readable allowed-signers file (lines such as: release@example.org namespaces=\"git\" ssh-ed25519 AAAA...)"
    fi
}

check_cert_method() {
    case "$cert_method" in
        ""|cloudflare|http|selfsigned) ;;
        *) die "$1 must be cloudflare, http or selfsigned, not '$cert_method'" ;;
    esac
}

# -- preflight ------------------------------------------------------------------------------------

check_root() {
    [ "$(id -u)" -eq 0 ] || die "run me as root (sudo ./setup.sh): I install packages and services"
}

check_os() {
    [ -r "$OS_RELEASE" ] || die "cannot read $OS_RELEASE: unsupported operating system"
    local id version
    id=$(. "$OS_RELEASE" && echo "${ID:-}")
    version=$(. "$OS_RELEASE" && echo "${VERSION_ID:-0}")
    case "$id" in
        debian) [ "${version%%.*}" -ge 12 ] 2>/dev/null && return 0 ;;
        ubuntu) [ "$(printf '%s\n22.04\n' "$version" | sort -V | head -1)" = "22.04" ] && return 0 ;;
    esac
    die "unsupported operating system '$id $version': Sealmail needs Debian 12+ or Ubuntu 22.04+"
}

check_memory() {
    local kb
    kb=$(awk '/^MemTotal:/ {print $2}' "$MEMINFO")
    [ $((kb / 1024)) -ge $((MIN_RAM_MB * 9 / 10)) ] \
        || die "this host has $((kb / 1024)) MB of memory; Sealmail needs at least 1 GB (2 GB recommended)"
}

check_disk() {
    local free_kb
    free_kb=$(df -Pk / | awk 'NR == 2 {print $4}')
    [ $((free_kb / 1024 / 1024)) -ge "$MIN_DISK_GB" ] \
        || die "only $((free_kb / 1024 / 1024)) GB free on /; Sealmail needs at least ${MIN_DISK_GB} GB"
}

check_ports() {
    local port holders busy=()
    for port in "${MAIL_PORTS[@]}"; do
        holders=$(ss -Htlnp "sport = :$port" 2>/dev/null | grep -o 'users:(("[^"]*"' | sed 's/users:(("//' | sort -u || true)
        # Sealmail's own components may hold them already (a re-run).
        holders=$(grep -v -x -e sealmail <<<"$holders" || true)
        [ -n "$holders" ] && busy+=("$port ($(tr '\n' ' ' <<<"$holders" | sed 's/ $//'))")
    done
    [ ${#busy[@]} -eq 0 ] \
        || die "ports already in use by other programs: ${busy[*]}. Stop them (e.g. postfix, exim4, apache2, nginx) and re-run"
}

check_outbound_25() {
    local target=${SEALMAIL_PORT25_PROBE:-gmail-smtp-in.l.google.com}
    if ! timeout 8 bash -c "exec 3<>/dev/tcp/$target/25" 2>/dev/null; then
        warn "outbound port 25 looks blocked (no answer from $target:25)."
        warn "Mail to other servers will time out until your provider opens it: most VPS providers"
        warn "block port 25 for new accounts and open it on request (a support ticket, or a setting"
        warn "in the control panel). Receiving mail and everything else works meanwhile."
        return 0
    fi
}

# The API token of a certbot-dns-cloudflare credentials file, as certbot's own reader (configobj)
# sees it: `dns_cloudflare_api_token = "xxx"`, 'xxx' or xxx, a trailing # comment allowed.
cloudflare_token() {
    local line value
    line=$(grep -E '^[[:space:]]*dns_cloudflare_api_token[[:space:]]*=' "$1" 2>/dev/null | tail -n 1) || true
    value=${line#*=}
    value=${value//$'\r'/}
    value="${value#"${value%%[![:space:]]*}"}"
    case "$value" in
        \"*) value=${value#\"}; value=${value%%\"*} ;;
        \'*) value=${value#\'}; value=${value%%\'*} ;;
        *) value=${value%%#*}; value="${value%"${value##*[![:space:]]}"}" ;;
    esac
    printf '%s' "$value"
}

check_cloudflare() {
    [ "$cert_method" = cloudflare ] || return 0
    [ -r "$CLOUDFLARE_INI" ] \
        || die "--cert-method cloudflare needs $CLOUDFLARE_INI with the line: dns_cloudflare_api_token = <token>"
    local token
    token=$(cloudflare_token "$CLOUDFLARE_INI")
    [ -n "$token" ] || die "no dns_cloudflare_api_token = <token> line in $CLOUDFLARE_INI"
    [[ "$token" =~ ^[A-Za-z0-9_-]+$ ]] \
        || die "the dns_cloudflare_api_token in $CLOUDFLARE_INI does not look like a Cloudflare API token (letters, digits, - and _)"
    info "Cloudflare API token found in $CLOUDFLARE_INI (${#token} characters)"
}

preflight() {
    check_root
    check_os
    check_memory
    check_disk
    check_cloudflare
    if [ "${1:-}" = setup ]; then
        check_ports
        check_outbound_25
    fi
}

# -- the work ---------------------------------------------------------------------------------------

load_env() {
    # cloud-init's inputs
    if [ -r /etc/profile.d/env.sh ]; then
        # shellcheck disable=SC1091
        . /etc/profile.d/env.sh
    fi
    domain=${domain:-${DOMAIN:-}}
    email=${email:-${EMAIL:-}}
    if [ -z "$cert_method" ] && [ -n "${SEALMAIL_CERT_METHOD:-}" ]; then
        cert_method=$SEALMAIL_CERT_METHOD
        check_cert_method SEALMAIL_CERT_METHOD
    fi
    if [ -z "$cert_method" ]; then
        if [ -f "$CLOUDFLARE_INI" ]; then cert_method=cloudflare; else cert_method=http; fi
    fi
}

ask() {
    local prompt=$1 var=$2 value
    read -r -p "$prompt" value
    printf -v "$var" '%s' "$value"
}

install_controller() {
    info "installing the Ansible controller (${VENV})"
    export DEBIAN_FRONTEND=noninteractive
    if ! dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q "install ok installed"; then
        apt-get update -q
        apt-get install -y -q --no-install-recommends python3-venv python3-apt git rsync
    fi
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    if ! cmp -s "$REPO_DIR/requirements-deploy.txt" "$VENV/.requirements" 2>/dev/null; then
        "$VENV/bin/pip" install -q --upgrade pip
        "$VENV/bin/pip" install -q -r "$REPO_DIR/requirements-deploy.txt"
        cp "$REPO_DIR/requirements-deploy.txt" "$VENV/.requirements"
    fi
}

run_playbook() {
    local playbook=$1; shift
    local verbosity=()
    [ "$DEBUG" = true ] && verbosity=(-vv)
    cd "$REPO_DIR"
    PATH="$VENV/bin:$PATH" ANSIBLE_FORCE_COLOR=0 \
        "$VENV/bin/ansible-playbook" "$playbook" -i inventory/local "${verbosity[@]}" "$@"
}

write_summary() {
    local env_file=/etc/sealmail/sealmail.env user password
    user=$(sed -n "s/^AUTH_BASIC_USERNAME='\(.*\)'$/\1/p" "$env_file" 2>/dev/null || true)
    password=$(sed -n "s/^AUTH_BASIC_PASSWORD='\(.*\)'$/\1/p" "$env_file" 2>/dev/null || true)
    umask 077
    {
        echo "Sealmail on $(hostname -f 2>/dev/null || hostname) for $domain, $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo
        echo "Web admin:     https://$domain/  (basic auth: $user / $password)"
        echo "Mail clients:  IMAP mail.$domain:993, SMTP mail.$domain:465 (or 587)"
        echo "Settings:      $env_file (root only; keep a copy for disaster recovery)"
        echo "Running:       systemctl status 'sealmail-*'     Logs: journalctl -u sealmail-mx"
        echo
        echo "DNS records (/etc/sealmail/dns-records.txt):"
        grep -v '^#' /etc/sealmail/dns-records.txt 2>/dev/null || true
    } > "$SUMMARY_FILE"
    info "summary (with the basic-auth password) saved to $SUMMARY_FILE"
}

initial_setup() {
    load_env
    if [ -z "$domain" ] && [ "$assume_yes" = false ]; then ask "Domain (e.g. example.com): " domain; fi
    if [ -z "$email" ] && [ "$assume_yes" = false ]; then ask "Email for certificate notices: " email; fi
    [ -n "$domain" ] || die "no domain: give --domain or set DOMAIN"
    if [ "$cert_method" != selfsigned ] && [ -z "$email" ]; then
        die "no email for certificate notices: give --email or set EMAIL"
    fi
    preflight setup
    if [ "$assume_yes" = false ]; then
        local answer
        ask "Set up Sealmail for $domain (certificates: $cert_method)? [y/N] " answer
        [[ "$answer" =~ ^[Yy] ]] || { echo "Nothing changed."; return 0; }
    fi
    install_controller
    info "configuring this host (log: $LOG_FILE)"
    local vars="" extra=() status=0
    if [ "$cert_method" = cloudflare ]; then
        # certbot reads $CLOUDFLARE_INI itself; the DNS records get the token without its quotes,
        # through a root-only vars file (never on a command line: ps shows those).
        chmod go-rwx "$CLOUDFLARE_INI"
        vars=$(mktemp /root/.sealmail-setup-vars.XXXXXX)
        printf 'dns__cloudflare_api_token: %s\n' "$(yaml_quote "$(cloudflare_token "$CLOUDFLARE_INI")")" > "$vars"
        extra=(-e "@$vars")
    fi
    DOMAIN=$domain EMAIL=$email SEALMAIL_CERT_METHOD=$cert_method run_playbook site.yml "${extra[@]}" \
        2>&1 | tee -a "$LOG_FILE" || status=$?
    [ -z "$vars" ] || shred --remove "$vars"
    [ "$status" -eq 0 ] || die "setup failed (see $LOG_FILE)"
    write_summary
}

renew_certificates() {
    load_env
    preflight renew
    install_controller
    info "renewing the certificate (log: $LOG_FILE)"
    DOMAIN=$domain EMAIL=$email SEALMAIL_CERT_METHOD=$cert_method run_playbook playbooks/renew-certs.yml \
        2>&1 | tee -a "$LOG_FILE"
}

SEALMAIL_BIN=${SEALMAIL_INSTALLED_BIN:-/opt/sealmail/current/bin/sealmail}  # overridable for the tests

ask_s3() {
    [ -n "$s3_endpoint" ] || ask "S3 endpoint (e.g. https://s3.eu-central-1.example.net): " s3_endpoint
    [ -n "$s3_bucket" ] || ask "Bucket (it must exist): " s3_bucket
    [ -n "$s3_access_key" ] || ask "Access key: " s3_access_key
    if [ -z "${S3_SECRET_KEY:-}" ]; then
        [ "$assume_yes" = false ] || die "no S3 secret key: set S3_SECRET_KEY in the environment"
        read -r -s -p "Secret key (not shown): " S3_SECRET_KEY; echo
    fi
    [[ "$s3_endpoint" =~ ^https?:// ]] || die "the S3 endpoint must start with https:// (or http://)"
    [ -n "$s3_bucket" ] && [ -n "$s3_access_key" ] && [ -n "$S3_SECRET_KEY" ] \
        || die "the bucket, access key and secret key are all needed"
}

yaml_quote() {
    local value=${1//\'/\'\'}
    printf "'%s'" "$value"
}

# The S3 settings go to Ansible in a root-only vars file, never on a command line (ps shows those).
write_backup_vars() {
    local file=$1
    umask 077
    {
        printf 'backup__s3_endpoint: %s\n' "$(yaml_quote "$s3_endpoint")"
        printf 'backup__s3_bucket: %s\n' "$(yaml_quote "$s3_bucket")"
        printf 'backup__s3_access_key: %s\n' "$(yaml_quote "$s3_access_key")"
        printf 'backup__s3_secret_key: %s\n' "$(yaml_quote "$S3_SECRET_KEY")"
        printf 'backup__public_key: %s\n' "$(yaml_quote "$backup_public_key")"
        printf 'backup__manifest_key: %s\n' "$(yaml_quote "$backup_manifest_key")"
    } > "$file"
}

setup_backups() {
    [ -x "$SEALMAIL_BIN" ] || die "Sealmail is not installed here yet: run Initial setup first"
    ask_s3
    if [ -z "$backup_public_key" ] && [ "$assume_yes" = false ]; then
        ask "Operator backup public key (empty: make a new key pair): " backup_public_key
    fi
    if [ -z "$backup_public_key" ]; then
        local pair
        pair=$("$SEALMAIL_BIN" backup init-key --json) || die "could not make a backup key"
        backup_public_key=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["public_key"])' <<<"$pair")
        backup_manifest_key=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["manifest_key"])' <<<"$pair")
        echo
        echo "Operator backup PRIVATE key (shown once; store it OFF this server, restores need it):"
        python3 -c 'import json,sys; print("  " + json.load(sys.stdin)["private_key"])' <<<"$pair"
        echo
    fi
    if [ -z "$backup_manifest_key" ] && [ "$assume_yes" = false ]; then
        ask "Manifest key printed with that key pair (or: sealmail backup manifest-key --key-file FILE): " backup_manifest_key
    fi
    [ -n "$backup_manifest_key" ] || die "no manifest key: give --backup-manifest-key (sealmail backup manifest-key --key-file FILE prints it)"
    install_controller
    local vars status=0
    vars=$(mktemp /root/.sealmail-backup-vars.XXXXXX)
    write_backup_vars "$vars"
    info "setting up daily encrypted backups to $s3_bucket (log: $LOG_FILE)"
    run_playbook playbooks/backup.yml -e "@$vars" -e backup__run_now=true 2>&1 | tee -a "$LOG_FILE" || status=$?
    shred --remove "$vars"
    [ "$status" -eq 0 ] || die "backup setup failed (see $LOG_FILE and journalctl -u sealmail-backup)"
    info "backups run daily (systemctl list-timers sealmail-backup.timer); the first one is done"
}

public_key_of() {
    /opt/sealmail/current/bin/python - "$1" <<'PY'
import base64, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
key = X25519PrivateKey.from_private_bytes(base64.b64decode(open(sys.argv[1]).read().strip()))
raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
print(base64.b64encode(raw).decode())
PY
}

setup_auto_upgrades() {
    [ -x "$SEALMAIL_BIN" ] || die "Sealmail is not installed here yet: run Initial setup first"
    if [ -z "$upgrade_signers" ] && [ -z "$upgrade_pin" ] && [ "$assume_yes" = false ]; then
        echo "The nightly upgrade installs only verified code: the release signing keys (an SSH"
        echo "allowed-signers file), or one commit you reviewed."
        ask "Allowed signers file (empty: pin a commit instead): " upgrade_signers
        [ -n "$upgrade_signers" ] || ask "Full id of the commit to install: " upgrade_pin
        check_upgrade_pinning
    fi
    [ -n "$upgrade_signers" ] || [ -n "$upgrade_pin" ] \
        || die "no automatic upgrades without verification: give --upgrade-signers FILE (the release signing keys) or --upgrade-pin COMMIT (a commit you reviewed)"
    local repo ref
    repo=$(git -C "$REPO_DIR" remote get-url origin 2>/dev/null || true)
    ref=$(git -C "$REPO_DIR" rev-parse --abbrev-ref HEAD 2>/dev/null || true)
    [ -n "$repo" ] && [ "$ref" != HEAD ] && [ -n "$ref" ] \
        || die "this clone has no origin branch to follow: clone the repository with git, then retry"
    if [ "$assume_yes" = false ]; then
        local answer what="the newest signed $ref of $repo"
        [ -z "$upgrade_pin" ] || what="commit $upgrade_pin of $repo"
        ask "Upgrade nightly to $what (rolled back when unhealthy)? [y/N] " answer
        [[ "$answer" =~ ^[Yy] ]] || { echo "Nothing changed."; return 0; }
    fi
    install_controller
    local vars status=0
    vars=$(mktemp /root/.sealmail-upgrade-vars.XXXXXX)
    {
        printf 'upgrade__repo: %s\n' "$(yaml_quote "$repo")"
        printf 'upgrade__ref: %s\n' "$(yaml_quote "$ref")"
        printf 'upgrade__pinned_commit: %s\n' "$(yaml_quote "$upgrade_pin")"
        printf 'upgrade__allowed_signers: |-\n'
        if [ -n "$upgrade_signers" ]; then grep -E '^[^#[:space:]]' "$upgrade_signers" | sed 's/^/  /'; fi
    } > "$vars"
    info "setting up nightly verified upgrades from $repo ($ref) (log: $LOG_FILE)"
    run_playbook playbooks/auto-upgrades.yml -e "@$vars" 2>&1 | tee -a "$LOG_FILE" || status=$?
    rm -f "$vars"
    [ "$status" -eq 0 ] || die "upgrade setup failed (see $LOG_FILE)"
    info "upgrades run nightly (systemctl list-timers sealmail-upgrade.timer); log: journalctl -t sealmail-upgrade"
}

restore_backup() {
    [ -x "$SEALMAIL_BIN" ] || die "Sealmail is not installed here yet: run Initial setup first (same domain), then restore"
    load_env
    if [ -z "$domain" ] && [ "$assume_yes" = false ]; then ask "Domain of the backed-up host: " domain; fi
    [ -n "$domain" ] || die "no domain: give --domain or set DOMAIN"
    ask_s3
    [ -n "$backup_key_file" ] || ask "File with the operator backup private key: " backup_key_file
    [ -r "$backup_key_file" ] || die "cannot read the key file $backup_key_file"
    if [ -z "$backup_run" ] && [ "$assume_yes" = false ]; then
        ask "Backup to restore (empty: the latest): " backup_run
    fi
    backup_public_key=$(public_key_of "$backup_key_file") || die "$backup_key_file does not hold an operator backup key"
    backup_manifest_key=$("$SEALMAIL_BIN" backup manifest-key --key-file "$backup_key_file") \
        || die "$backup_key_file does not hold an operator backup key"
    if [ "$assume_yes" = false ]; then
        local answer
        ask "Replace this host's mail data with backup ${backup_run:-(latest)}? Current files are moved aside. [y/N] " answer
        [[ "$answer" =~ ^[Yy] ]] || { echo "Nothing changed."; return 0; }
    fi
    install_controller
    local vars status=0
    vars=$(mktemp /root/.sealmail-backup-vars.XXXXXX)
    write_backup_vars "$vars"
    info "restoring (log: $LOG_FILE)"
    DOMAIN=$domain EMAIL=$email SEALMAIL_CERT_METHOD=$cert_method \
        run_playbook playbooks/restore.yml -e "@$vars" -e "backup_key_file=$backup_key_file" \
        -e "backup_run=$backup_run" 2>&1 | tee -a "$LOG_FILE" || status=$?
    shred --remove "$vars"
    [ "$status" -eq 0 ] || die "restore failed (see $LOG_FILE)"
    info "restored: every alias signs in with its old password"
}

menu() {
    local choice
    while true; do
        cat <<'EOF'

Sealmail
1. Initial setup
2. Setup Backups
3. Setup Auto Upgrades
4. Renew certificates
5. Restore from Backup
6. Help
7. Exit
EOF
        read -r -p "Choose [1-7]: " choice || exit 0
        case "$choice" in
            1) initial_setup ;;
            2) setup_backups ;;
            3) setup_auto_upgrades ;;
            4) renew_certificates ;;
            5) restore_backup ;;
            6) help_text ;;
            7) exit 0 ;;
            *) echo "Please answer a number from 1 to 7." ;;
        esac
    done
}

main() {
    parse_args "$@"
    case "$action" in help|exit) ;; *) check_root ;; esac
    case "$action" in
        setup) initial_setup ;;
        renew) renew_certificates ;;
        backups) setup_backups ;;
        upgrades) setup_auto_upgrades ;;
        restore) restore_backup ;;
        check) load_env; preflight setup; info "preflight checks passed (certificates: $cert_method)" ;;
        help) help_text ;;
        exit) exit 0 ;;
        "")
            [ -t 0 ] || die "no terminal for the menu: give --action setup|renew|backups|upgrades|restore|help|exit"
            menu
            ;;
    esac
}

main "$@"
