"""The directive policy: every OpenVPN 2.6 directive in exactly one class (data only).

Read by ``ovpnkx.config`` on every runtime, the board included, so each class is one
string of names separated by single spaces, padded with a space at both ends: a
membership test is a substring search (``" %s " % name in CLASS``) and the table
costs one string object per class, not one object per name.

Classes (``docs/directives.md`` lists them with their meaning):

- ``BOTH``, ``CLIENT``, ``SERVER``: implemented in client and server configs, in client
  configs only, in server configs only. A directive implemented only for the other
  role is refused ("not supported in a client config").
- ``SERVER_HOST_ONLY_IN_CLIENT``: server directives that are host-only in a client config.
- ``HOST_ONLY``: about the host's tun device, routes, DNS, scripts around the tunnel,
  privileges, logging and daemon life: nothing to do here; accepted and listed in one
  note.
- ``REFUSED``: (reason, names) pairs; refused with file, line and that reason, whatever
  ``ignore-unknown-option`` or ``setenv opt`` say (OpenVPN knows them and would honour
  them).
- ``BY_OTHERS``: (work, names) pairs, a subset of the implemented classes whose
  behaviour is built outside the config parser (documentation only).

Any other name is unknown: refused with the nearest known name as a hint, unless
``ignore-unknown-option``, ``setenv opt`` or ``setenv FORWARD_COMPATIBLE 1`` softens it
to a warning, as in OpenVPN.
"""

BOTH = (
    " port proto ca cert key extra-certs tls-auth key-direction tls-crypt tls-crypt-v2 auth data-ciphers"
    " ncp-ciphers cipher remote-cert-tls remote-cert-ku remote-cert-eku verify-x509-name peer-fingerprint"
    " tls-version-min tls-version-max tls-cipher tls-ciphersuites verb hand-window tls-timeout ping ping-restart"
    " keepalive comp-lzo comp-noadapt compress allow-compression explicit-exit-notify reneg-sec reneg-bytes reneg-pkts"
    " tran-window replay-window ignore-unknown-option setenv "
)

CLIENT = (
    " client pull tls-client remote rport remote-random connect-retry connect-retry-max server-poll-timeout"
    " connect-timeout auth-user-pass data-ciphers-fallback pull-filter "
)

SERVER = (
    " server mode tls-server local lport dh push topology max-clients duplicate-cn connect-freq-initial"
    " verify-client-cert "
)

# server directives that openvpn also takes in a client config, where they mean nothing
SERVER_HOST_ONLY_IN_CLIENT = " local lport dh topology "

HOST_ONLY = (
    # the tun/tap device and its addresses
    " dev dev-type dev-node lladdr ifconfig ifconfig-ipv6 ifconfig-noexec ifconfig-nowarn tun-mtu tun-mtu-extra"
    " link-mtu mssfix txqueuelen tun-ipv6 disable-dco persist-tun persist-key persist-local-ip persist-remote-ip"
    # routes and DNS of the host
    " route route-ipv6 route-gateway route-ipv6-gateway route-metric route-delay route-noexec route-nopull"
    " redirect-gateway redirect-private allow-pull-fqdn allow-recursive-routing max-routes client-nat dhcp-option"
    " dns block-ipv6 block-outside-dns register-dns route-method ip-win32 tap-sleep dhcp-renew dhcp-release"
    " dhcp-pre-release windows-driver win-sys allow-nonadmin pause-exit service show-net-up client-to-client"
    # sockets, addresses and resolving
    " nobind bind bind-dev resolv-retry float sndbuf rcvbuf fast-io tcp-nodelay socket-flags mark mtu-disc"
    " mtu-test passtos shaper multihome remote-random-hostname http-proxy-retry socks-proxy-retry"
    # scripts around the tunnel (not those that decide who may connect)
    " script-security up down up-delay up-restart down-pre route-up route-pre-down ipchange learn-address"
    " client-disconnect setenv-safe iproute tls-export-cert x509-track keying-material-exporter"
    # the process: privileges, logging, management, files
    " daemon user group chroot cd nice mlock writepid log log-append syslog status status-version"
    " mute mute-replay-warnings suppress-timestamps machine-readable-output echo remap-usr1 tmp-dir memstats"
    " management management-hold management-log-cache management-query-passwords management-query-proxy"
    " management-query-remote management-signal management-up-down management-forget-disconnect"
    " management-client management-client-user management-client-group auth-nocache auth-retry push-peer-info"
    " ping-timer-rem prng disable-occ tls-exit ifconfig-pool-persist stale-routes-check tcp-queue-limit"
    " hash-size bcast-buffers "
)

REFUSED = (
    ("a check of the peer that ovpnkx does not implement: without it ovpnkx would accept peers"
     " that openvpn refuses",
     " crl-verify capath verify-hash ns-cert-type x509-username-field tls-verify tls-crypt-v2-verify"
     " auth-user-pass-verify auth-user-pass-optional client-connect plugin management-client-auth"
     " username-as-common-name client-config-dir ccd-exclusive opt-verify connect-freq disable "),
    ("a TLS or replay-protection setting that ovpnkx does not implement: ignoring it could weaken the session",
     " tls-groups ecdh-curve tls-cert-profile replay-persist no-replay "),
    ("ovpnkx reads certificates and keys as PEM text only (ca, cert, key; no passphrase)",
     " pkcs12 pkcs11-providers pkcs11-id pkcs11-id-management pkcs11-pin-cache pkcs11-private-mode"
     " pkcs11-protected-authentication pkcs11-cert-private cryptoapicert management-external-key"
     " management-external-cert engine providers askpass "),
    ("not implemented by ovpnkx (it would change how the peer is reached or how packets are framed)",
     " http-proxy http-proxy-option http-proxy-user-pass socks-proxy fragment port-share proto-force"
     " connection config "),
    ("not implemented by ovpnkx",
     " inactive session-timeout ping-exit static-challenge server-bridge server-ipv6 ifconfig-pool"
     " ifconfig-push ifconfig-ipv6-pool ifconfig-ipv6-push ifconfig-push-constraint iroute iroute-ipv6"
     " push-reset push-remove max-routes-per-client vlan-accept vlan-pvid vlan-tagging auth-gen-token"
     " auth-gen-token-secret single-session gremlin "),
    ("only valid when pushed by a server",
     " peer-id auth-token auth-token-user "),
    ("removed from openvpn, which refuses it too", " compat-names no-name-remapping client-cert-not-required mtu-dynamic "),
    ("static-key mode: ovpnkx runs TLS with key method 2 only",
     " secret "),
    ("a stand-alone openvpn command, not a directive of a connection",
     " genkey test-crypto show-ciphers show-digests show-tls show-engines show-gateway show-pkcs11-ids"
     " show-curves show-groups mktun rmtun version help "),
)

BY_OTHERS = (
    ("tls-crypt and tls-crypt-v2 wrapping (branch tlscrypt)", " tls-crypt tls-crypt-v2 "),
    ("compression stub framing (issue 8, item 3)", " comp-lzo comp-noadapt compress allow-compression "),
    ("the client's life: failover, retries, renegotiation timers, exit notification (issue 8, items 3-4)",
     " remote-random connect-retry connect-retry-max server-poll-timeout connect-timeout explicit-exit-notify"
     " reneg-sec reneg-bytes reneg-pkts tran-window replay-window "),
    ("ovpnkx serve for real clients (branch fleet)", " topology max-clients duplicate-cn connect-freq-initial "),
)
