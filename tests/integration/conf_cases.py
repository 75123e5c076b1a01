"""Configuration files both nginx 1.22 and portico know, for the differential `-t` test.

Each case is (id, text). `H(body)` wraps server/http directives in `events {}` and `http {}`, so
the body's first line is line 3 of the file.
"""


def H(body):
    return "events {}\nhttp {\n" + body + "\n}\n"


def S(body):
    return H("server {\n" + body + "\n}")


ACCEPTED = [
    ("minimal", "events {}\n"),
    ("comments_quotes", H('# a comment\nserver { listen 127.0.0.1:8081; server_name "a.example" \'b.example\'; # tail\n'
                          'location / { root "/srv/www"; add_header X-A "one two" always; } }')),
    ("escapes", S('location / { add_header X-Q "say \\"hi\\"" ; add_header X-B \'it\\\'s\'; }')),
    ("hash_in_word", S("location /a#b { root /srv; }")),
    ("variable_braces", S("location / { add_header X-Uri ${uri}x; }")),
    ("main_directives", "user www-data;\nworker_processes auto;\npid /tmp/p.pid;\nerror_log stderr warn;\n"
                        "events { worker_connections 100; multi_accept on; use epoll; }\n"),
    ("http_core", H("sendfile on; tcp_nopush on; tcp_nodelay off; keepalive_timeout 65 60;\n"
                    "keepalive_requests 100; server_tokens off; types_hash_max_size 2048;\n"
                    "server_names_hash_bucket_size 128; server_name_in_redirect off; absolute_redirect off;\n"
                    "port_in_redirect off; default_type application/octet-stream;\n"
                    "client_max_body_size 10m; client_body_buffer_size 128k; client_header_timeout 1m;\n"
                    "client_body_timeout 30s; send_timeout 1h30m; large_client_header_buffers 4 16k;\n"
                    "log_not_found off;")),
    ("gzip_all", H("gzip on; gzip_types text/css application/json; gzip_comp_level 6; gzip_min_length 1000;\n"
                   "gzip_vary on; gzip_proxied expired no-cache auth; gzip_disable msie6 \"MSIE [1-6]\\.\";\n"
                   "gzip_buffers 16 8k; gzip_http_version 1.0; gzip_static on;")),
    ("types_block", H("types { text/html html htm; image/png png; }\nserver { types { text/plain txt; } }")),
    ("log_format", H("log_format main '$remote_addr - $remote_user [$time_local] '\n  '\"$request\" $status';\n"
                     "log_format js escape=json '{\"a\":\"$uri\"}';\naccess_log logs/a.log main;\n"
                     "server { access_log off; location / { access_log logs/b.log js; access_log logs/c.log; } }")),
    ("listens", H("server { listen 8081; listen 127.0.0.1:8082 default_server; listen [::]:8081 reuseport backlog=128; listen unix:/tmp/x.sock; }\n"
                  "server { listen 8081; server_name *.example.com .example.org www.example.* ~^(?<sub>.+)\\.example\\.net$ \"\" _; }")),
    ("locations", S("location = / { return 200 \"root\"; }\nlocation ^~ /static/ { alias /srv/static/; expires 30d; }\n"
                    "location ~ \\.php$ { return 403; }\nlocation ~* \\.(png|jpg)$ { expires max; }\n"
                    "location @fallback { return 302 /x; }\nlocation /a/ { location /a/b/ { root /x; } location ~ ^/a/c { } }\n"
                    "location /b { try_files $uri $uri/ @fallback; } location /c { try_files $uri =404; }\n"
                    "location =/d { } location ^~/e { } location ~/f { } location ~*/g { }")),
    ("errors_headers", H("error_page 404 /404.html; error_page 500 502 503 504 =200 /50x.html; error_page 403 = /x;\n"
                         "add_header X-Frame-Options DENY; server { error_page 404 = @nf; location @nf { return 404; }\n"
                         "location / { add_header Cache-Control no-store always; expires -1; } location /m { expires epoch; } location /o { expires off; } location /n { expires 1y; } }")),
    ("returns", S("location /a { return 301 https://example.com$request_uri; }\nlocation /b { return http://example.com/; }\n"
                  "location /c { return 444; } location /d { return 200 ok; }")),
    ("index", H("index index.html index.htm; server { index a.html /b.html; root html/; }")),
    ("include_glob_nomatch", H("include /nonexistent-dir-portico/*.conf;")),
    ("warn_duplicates", H("gzip_types text/html text/css text/css;\ntypes { text/plain a; text/html a; }\n"
                          "server { listen 8085; server_name x.example; }\nserver { listen 8085; server_name X.example; }")),
    ("backslash_word", S("location / { add_header X-A a\\ b; add_header X-B \"tab\\there\"; }")),
    ("quote_paren", "events {}\nhttp { server { location / { return 200 \"a\")\n; } } }\n"),
    ("dup_named_ok", S("location @a { }\nlocation @a { }")),
    ("variables_in_root_alias", S("root /srv/$host;\nlocation ~ ^/p/(.+)$ { alias /data/$1; }\n"
                                  "location /q/ { alias /data/$arg_d/; }")),
    ("listen_bind", H("server { listen 127.0.0.1:8086 bind; listen 127.0.0.2:8086 bind; }")),
    ("ms_times", H("send_timeout 500ms; keepalive_timeout 1m30s 1d; client_body_timeout 1w;")),
    ("keepalive_disable", H("keepalive_disable msie6 safari;\nserver { keepalive_disable none;\n"
                            "location / { keepalive_disable safari;\nkeepalive_disable msie6; } }")),
    ("keepalive_disable_dup_value", H("keepalive_disable msie6 msie6;")),
    ("index_variables", S("location / { index $host.html ${server_name}.htm /last.html; }")),
]

REJECTED = [
    ("unknown_directive", H("frobnicate on;")),
    ("keepalive_disable_bad", H("keepalive_disable msie6 opera;")),
    ("not_allowed_here", H("worker_connections 10;")),
    ("alias_at_server", S("alias /x;")),
    ("listen_in_location", S("location / { listen 80; }")),
    ("nargs_flag", H("sendfile on off;")),
    ("nargs_listen", S("listen;")),
    ("nargs_events", "events on {}\n"),
    ("flag_value", H("sendfile yes;")),
    ("dup_flag", H("sendfile on;\nsendfile off;")),
    ("dup_root_alias", S("location / { alias /a/; root /b; }")),
    ("dup_alias_root", S("location / { root /b;\n alias /a/; }")),
    ("dup_root", S("root /a; root /b;")),
    ("dup_location", S("location /a { }\nlocation /a { }")),
    ("dup_location_noregex", S("location /a { }\nlocation ^~ /a { }")),
    ("dup_exact", S("location = /a { }\n\nlocation = /a { }")),
    ("dup_default", H("server { listen 8081 default_server; }\nserver { listen 8081 default; }")),
    ("dup_listen_same_server", S("listen 8081;\nlisten 8081;")),
    ("dup_listen_options", H("server { listen 8081 backlog=10; }\nserver { listen 8081 reuseport; }")),
    ("bad_port", S("listen 127.0.0.1:99999;")),
    ("bad_port_word", S("listen 127.0.0.1:http;")),
    ("host_not_found", S("listen no-such-host.invalid:80;")),
    ("listen_bad_param", S("listen 80 frob;")),
    ("listen_bad_backlog", S("listen 80 backlog=x;")),
    ("outside_location", S("location /a {\n  location /b { }\n}")),
    ("inside_exact", S("location = /a { location /a/b { } }")),
    ("inside_named", S("location @a { location /a { } }")),
    ("named_nested", S("location /a { location @b { } }")),
    ("bad_modifier", S("location ~~ /a { }")),
    ("bad_regex", S("location ~ ^/(a { }")),
    ("alias_named", S("location @a { alias /x; }")),
    ("unexpected_close", "events {}\n}\n"),
    ("unexpected_open", "events {}\n{\n"),
    ("unexpected_semicolon", "events {}\n;\n"),
    ("eof_in_block", "events {\n"),
    ("eof_in_directive", "events {}\nworker_processes 1"),
    ("unbalanced_quote", "events {}\nworker_processes \"1;\n"),
    ("quote_then_char", "events {}\npid \"a\"b;\n"),
    ("close_after_args", "events {}\nhttp { sendfile on }\n"),
    ("no_opening_brace", "events;\n"),
    ("not_terminated", "events {}\npid x {}\n"),
    ("no_events", "worker_processes 1;\n"),
    ("dup_events", "events {}\nevents {}\n"),
    ("dup_http", "events {}\nhttp {}\nhttp {}\n"),
    ("bad_workers", "worker_processes many;\nevents {}\n"),
    ("dup_workers", "worker_processes 1;\nworker_processes 2;\nevents {}\n"),
    ("bad_worker_connections", "events { worker_connections x; }\n"),
    ("bad_error_log_level", "error_log stderr loud;\nevents {}\n"),
    ("bad_size", H("client_max_body_size 10q;")),
    ("bad_time", H("send_timeout 1y;")),
    ("bad_time_order", H("keepalive_timeout 30m1h;")),
    ("bad_number", H("keepalive_requests ten;")),
    ("comp_level_range", H("gzip_comp_level 10;")),
    ("gzip_proxied_bad", H("gzip_proxied sometimes;")),
    ("gzip_http_version_bad", H("gzip_http_version 2.0;")),
    ("gzip_static_bad", H("gzip_static maybe;")),
    ("gzip_buffers_bad", H("gzip_buffers 0 8k;")),
    ("unknown_log_format", H("access_log logs/a.log nosuch;")),
    ("dup_log_format", H("log_format a x;\nlog_format a y;")),
    ("combined_redefined", H("log_format combined x;")),
    ("log_format_escape", H("log_format a escape=xml x;")),
    ("log_format_in_server", S("log_format a x;")),
    ("access_log_off_extra", H("access_log off main;")),
    ("access_log_bad_param", H("access_log logs/a.log combined frob;")),
    ("error_page_range", H("error_page 200 /x;")),
    ("error_page_499", H("error_page 499 /x;")),
    ("error_page_bad_eq", H("error_page 404 =abc /x;")),
    ("error_page_bad_code", H("error_page 40x /x;")),
    ("add_header_bad", H("add_header X-A b sometimes;")),
    ("add_header_nargs", H("add_header X-A;")),
    ("expires_bad", H("expires soon;")),
    ("expires_dup", H("expires 1h; expires 2h;")),
    ("expires_daily_25h", H("expires @25h;")),
    ("expires_daily_modified", H("expires modified @1h;")),
    ("expires_modified_epoch", H("expires modified epoch;")),
    ("expires_not_modified", H("expires later 1h;")),
    ("return_bad", S("return abc;")),
    ("return_big", S("return 1000;")),
    ("try_files_one", S("try_files $uri;")),
    ("try_files_bad_code", S("try_files $uri =abc;")),
    ("try_files_dup", S("try_files $uri =404; try_files $uri =403;")),
    ("index_empty", H("index \"\";")),
    ("server_name_bad_wildcard", S("server_name *example.com;")),
    ("server_name_regex", S("server_name ~^(www\\.example;")),
    ("include_missing", H("include /nonexistent-portico-file.conf;")),
    ("types_block_in_types", H("types { text/html { } }")),
    ("client_header_timeout_loc", S("location / { client_header_timeout 10s; }")),
    ("server_names_hash_in_server", S("server_names_hash_bucket_size 64;")),
    ("cmd_block", "events {}\nhttp {\n  server {\n    location / {\n      try_files $uri =404;\n    }\n  }\n  server { listen 8081 }\n}\n"),
    ("multiline_directive", H("log_format main\n  '$a'\n  'b' \"c\"\n  { x;")),
]

# Edge cases found while comparing with nginx 1.22 (lexer corners, contexts, argument forms).
ACCEPTED += [
    ('more_1', S("location /a { location /a/b { } } location /a/ { }")),
    ('more_2', H("server { listen 8090; } server { listen 8090 default_server; }")),
    ('more_3', S("listen localhost:8091;")),
    ('more_4', S("listen *:8092;")),
    ('more_5', S("listen [::1]:8093 default_server;")),
    ('more_6', S("server_name a/b;")),
    ('more_8', H("types { text/html; }")),
    ('more_9', H("gzip_types *; gzip_types text/css;")),
    ('more_10', H("access_log off; access_log x.log;")),
    ('more_13', S('location ~ "^/a{2}$" { }')),
    ('more_15', S("return 301;")),
    ('more_17', H("keepalive_timeout 0; client_max_body_size 0;")),
    ('more_18', "worker_processes 0;\nevents {}\n"),
    ('more_20', "error_log /dev/null crit;\nevents {}\n"),
    ('more_21', "user root root;\nevents {}\n"),
    ('more_22', "pid off;\nevents {}\n"),
    ('more_27', S("location / { return 302 /x; return 301 /y; }")),
    ('more_30', S("location ~ a { location ~ b { } }")),
    ('more_32', H("error_page 404 =200;")),
    ('more_37', S("listen 80 default_server default_server;")),
    ('more_38', S("listen unix:/tmp/p.sock default_server;")),
    ('more_39', H("log_format a escape=json;")),
    ('more_43', H("server_tokens build;")),
    ('more_44', H("gzip_proxied off any;")),
    ('more_48', "events {}\n\"http\" { }\n"),
    ('more_50', "events {}\n#\n# only comments\n"),
    ('more_52', S("location / { try_files $uri $uri/ /index.html; }")),
    ('more_53', S("location /x { return 301 $scheme://example.com; }")),
    ('more_54', S("location /x { return $scheme://example.com; }")),
    ('more_57', H("expires +1h;")),
]

REJECTED += [
    ('more_7', H("error_page = /x;")),
    ('more_11', H("include;")),
    ('more_12', "events { include; }\n"),
    ('more_14', S("location ~ ^/a{2}$ { }")),
    ('more_16', S("return 200 a b;")),
    ('more_19', H("expires 1h 2h;")),
    ('more_23', "http {}\n"),
    ('more_24', H("server { location / { } }\nserver { server { } }")),
    ('more_25', H("http { }")),
    ('more_26', "events {}\nserver { }\n"),
    ('more_28', S("location = / { location = /x { } }")),
    ('more_29', S("location ~ a { location /b { } }")),
    ('more_31', S("location /a { alias /x; alias /y; }")),
    ('more_33', H("add_header X;")),
    ('more_34', H("gzip_buffers 4;")),
    ('more_35', H("gzip_buffers 4 0;")),
    ('more_36', H("large_client_header_buffers 4 8k;\nlarge_client_header_buffers 4 8k;")),
    ('more_40', H("index;")),
    ('more_41', "events {\n worker_connections 1;\n worker_connections 2;\n}\n"),
    ('more_42', "events { multi_accept maybe; }\n"),
    ('more_46', H("default_type;")),
    ('more_47', H("types { include; }")),
    ('more_49', "events {}\nht\\tp { }\n"),
    ('more_51', "events {} # c\n\n\n}"),
    ('more_55', S("location /x { return /relative; }")),
    ('more_56', H("expires -1h;\nexpires +1h;")),
]

REJECTED += [
    ("include_directory", H("include /;")),
]

# The core directives (http core and log modules): -t as nginx says it.
ACCEPTED += [
    ("core_buffers", H("client_header_buffer_size 128; connection_pool_size 128;\n"
                       "request_pool_size 8k; merge_slashes off;\n"
                       "server { large_client_header_buffers 4 256; }")),
    ("core_keepalive", H("keepalive_time 1h; keepalive_disable msie6 safari;\n"
                         "if_modified_since before; location_placeholder;")
     .replace(" location_placeholder;", "")),
    ("core_shutdown", "worker_shutdown_timeout 10ms;\nevents {}\n"),
    ("log_parameters", H("log_format t $uri;\naccess_log logs/a.log t buffer=32k flush=5s gzip=4 if=$arg_x;\n"
                         "access_log logs/$host.log t if=$arg_y;\n"
                         "open_log_file_cache max=10 inactive=1m min_uses=2 valid=2m;\n"
                         "server { open_log_file_cache off; error_log logs/s.log notice; "
                         "location / { error_log stderr; error_log logs/l.log debug; } }")),
    ("log_gzip_shares_buffer", H("access_log logs/a.log combined gzip;\naccess_log logs/a.log combined gzip;")),
]

REJECTED += [
    ("core_pool_small", H("connection_pool_size 100;")),
    ("core_pool_align", H("request_pool_size 120;")),
    ("core_pool_vs_large", H("connection_pool_size 16k;\nserver { }")),
    ("core_merge_slashes_flag", H("merge_slashes yes;")),
    ("core_merge_slashes_location", S("location / { merge_slashes off; }")),
    ("core_ims_bad", H("if_modified_since never;")),
    ("core_keepalive_time_bad", H("keepalive_time 1x;")),
    ("core_keepalive_disable_bad", H("keepalive_disable opera;")),
    ("core_shutdown_bad", "worker_shutdown_timeout soon;\nevents {}\n"),
    ("core_shutdown_http", H("worker_shutdown_timeout 1s;")),
    ("log_buffer_zero", H("access_log a.log combined buffer=0;")),
    ("log_flush_no_buffer", H("access_log a.log combined flush=1s;")),
    ("log_gzip_level", H("access_log a.log combined gzip=0;")),
    ("log_buffer_variables", H("access_log a$host.log combined buffer=4k;")),
    ("log_conflicting", H("access_log a.log combined buffer=4k;\naccess_log a.log combined buffer=8k;")),
    ("log_cache_no_max", H("open_log_file_cache inactive=10s;")),
    ("log_cache_bad", H("open_log_file_cache max=1 sometimes;")),
    ("log_cache_dup", H("open_log_file_cache off;\nopen_log_file_cache off;")),
    ("error_log_level_http", H("error_log logs/e.log loud;")),
]

ACCEPTED += [
    ("syslog_access_log", H("access_log syslog:server=127.0.0.1:5140,facility=user,severity=alert,"
                            "tag=web_1,nohostname;\nserver { access_log syslog:server=[::1]; }")),
]

REJECTED += [
    ("syslog_port", H("access_log syslog:server=127.0.0.1:99999;")),
    ("syslog_no_server", H("access_log syslog:facility=user;")),
    ("syslog_tag", H("access_log syslog:server=127.0.0.1,tag=a-b;")),
    ("syslog_param", H("access_log syslog:server=127.0.0.1,bogus;")),
    ("syslog_buffered", H("access_log syslog:server=127.0.0.1 combined buffer=4k;")),
    ("syslog_severity", H("access_log syslog:server=127.0.0.1,severity=loud;")),
    ("syslog_dup_server", H("access_log syslog:server=127.0.0.1,server=127.0.0.2;")),
]

# access, auth_basic, realip, autoindex, stub_status (config/access_conf.cpp).
ACCEPTED += [
    ("access_rules", H("allow 127.0.0.1; deny 10.0.0.0/8; allow ::1; deny 2001:db8::/32; allow unix:; deny all;\n"
                       "server { location / { allow all; } }")),
    ("access_low_bits", H("allow 10.1.2.3/8;\ndeny 2001:db8::1/32;")),
    ("auth_basic_all", H("satisfy any; auth_delay 1s; auth_basic \"zone $host\"; auth_basic_user_file conf/htpasswd;\n"
                         "server { location / { auth_basic off; } location /v { auth_basic_user_file $arg_f; } }")),
    ("realip_all", H("set_real_ip_from 127.0.0.1; set_real_ip_from 10.0.0.0/8; set_real_ip_from unix:;\n"
                     "set_real_ip_from localhost; real_ip_header X-Forwarded-For; real_ip_recursive on;\n"
                     "server { location / { real_ip_header X-Client; } }")),
    ("autoindex_all", H("autoindex on; autoindex_exact_size off; autoindex_localtime on; autoindex_format json;")),
    ("stub_status_forms", S("location /a { stub_status; } location /b { stub_status on; }")),
]

REJECTED += [
    ("allow_bad", H("allow 10.0.0.0/33;")),
    ("allow_word", H("deny example;")),
    ("allow_nargs", H("allow;")),
    ("satisfy_bad", H("satisfy some;")),
    ("satisfy_dup", H("satisfy any;\nsatisfy all;")),
    ("auth_basic_dup", H("auth_basic a;\nauth_basic b;")),
    ("auth_user_file_dup", H("auth_basic_user_file a;\nauth_basic_user_file b;")),
    ("auth_delay_bad", H("auth_delay soon;")),
    ("real_ip_header_dup", H("real_ip_header X-Real-IP;\nreal_ip_header X-Forwarded-For;")),
    ("real_ip_recursive_bad", H("real_ip_recursive yes;")),
    ("set_real_ip_from_bad_host", H("set_real_ip_from no-such-host.invalid;")),
    ("autoindex_bad", H("autoindex maybe;")),
    ("autoindex_format_bad", H("autoindex_format yaml;")),
    ("stub_status_in_http", H("stub_status;")),
    ("stub_status_nargs", S("location / { stub_status a b; }")),
]
