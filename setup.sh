#!/usr/bin/env bash
# Sealmail on this host: the menu, or unattended with flags. Run as root from a clone of the
# repository:
#   ./setup.sh                                   # menu
#   ./setup.sh --action setup --domain example.com --email you@example.com --cert-method http --yes
#   DEBUG=true ./setup.sh ...                    # verbose (shell trace and ansible -vv)
# Inputs may also come from the environment (DOMAIN, EMAIL, AUTH_BASIC_USERNAME,
# AUTH_BASIC_PASSWORD), and /etc/profile.d/env.sh is read when it exists (cloud-init writes it).
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
MAIL_PORTS=(25 80 443 465 587 993 995)

DEBUG=${DEBUG:-false}
if [ "$DEBUG" = true ]; then set -x; fi

action="" domain="" email="" cert_method="" assume_yes=false

die() { echo "setup.sh: $*" >&2; exit 1; }
warn() { echo "setup.sh: warning: $*" >&2; }
info() { echo "==> $*"; }

usage() {
    cat <<'EOF'
Usage: setup.sh [--action setup|renew|check|help|exit] [--domain DOMAIN] [--email EMAIL]
                [--cert-method cloudflare|http|selfsigned] [--yes] [--help]

  --action       what to do without the menu: setup (Initial setup), renew (Renew certificates),
                 check (only the preflight checks), help, exit
  --domain       the domain mail is hosted for (DOMAIN); the host answers as mail.<domain>
  --email        address for certificate expiry notices (EMAIL)
  --cert-method  cloudflare: DNS-01 with /root/.cloudflare.ini (dns_cloudflare_api_token = ...)
                 http:       HTTP-01 on port 80 (the A records must already point here)
                 selfsigned: a local CA (tests, private networks)
                 default: cloudflare when /root/.cloudflare.ini exists, else http
  --yes          do not ask for confirmation
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
            -y|--yes) assume_yes=true; shift ;;
            -h|--help) usage; exit 0 ;;
            *) usage >&2; die "unknown option: $1" ;;
        esac
    done
    case "$action" in
        ""|setup|renew|check|help|exit) ;;
        *) die "--action must be setup, renew, check, help or exit, not '$action'" ;;
    esac
    case "$cert_method" in
        ""|cloudflare|http|selfsigned) ;;
        *) die "--cert-method must be cloudflare, http or selfsigned, not '$cert_method'" ;;
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

preflight() {
    check_root
    check_os
    check_memory
    check_disk
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
    if [ -z "$cert_method" ]; then
        if [ -f /root/.cloudflare.ini ]; then cert_method=cloudflare; else cert_method=http; fi
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
    DOMAIN=$domain EMAIL=$email SEALMAIL_CERT_METHOD=$cert_method run_playbook site.yml \
        2>&1 | tee -a "$LOG_FILE"
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

menu() {
    local choice
    while true; do
        cat <<'EOF'

Sealmail
1. Initial setup
2. Renew certificates
3. Help
4. Exit now
EOF
        read -r -p "Choose [1-4]: " choice || exit 0
        case "$choice" in
            1) initial_setup ;;
            2) renew_certificates ;;
            3) help_text ;;
            4) exit 0 ;;
            *) echo "Please answer 1, 2, 3 or 4." ;;
        esac
    done
}

main() {
    parse_args "$@"
    case "$action" in help|exit) ;; *) check_root ;; esac
    case "$action" in
        setup) initial_setup ;;
        renew) renew_certificates ;;
        check) preflight setup; info "preflight checks passed" ;;
        help) help_text ;;
        exit) exit 0 ;;
        "")
            [ -t 0 ] || die "no terminal for the menu: give --action setup|renew|help|exit"
            menu
            ;;
    esac
}

main "$@"
