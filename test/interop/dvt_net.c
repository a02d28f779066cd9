#include "dvt_net.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef DVT_INTEROP_SRCDIR
#define DVT_INTEROP_SRCDIR "."
#endif

typedef struct watchdog {
  uv_timer_t timer;
  int fired;
  int closed;
} watchdog;

static void watchdog_fire(uv_timer_t *t) {
  ((watchdog *)t->data)->fired = 1;
}

static void watchdog_closed(uv_handle_t *h) {
  ((watchdog *)h->data)->closed = 1;
}

int dvt_run_until(uv_loop_t *loop, int (*cond)(void *ud), void *ud,
                  unsigned timeout_ms) {
  watchdog w;
  int ok;
  memset(&w, 0, sizeof(w));
  assert_int_equal(uv_timer_init(loop, &w.timer), 0);
  w.timer.data = &w;
  assert_int_equal(uv_timer_start(&w.timer, watchdog_fire, timeout_ms, 0), 0);
  while (!(ok = cond(ud)) && !w.fired) {
    uv_run(loop, UV_RUN_ONCE);
  }
  uv_close((uv_handle_t *)&w.timer, watchdog_closed);
  while (!w.closed) {
    uv_run(loop, UV_RUN_NOWAIT);
  }
  return ok ? 0 : -1;
}

static int flag_set(void *ud) {
  return *(const int *)ud != 0;
}

void dvt_run_flag(uv_loop_t *loop, const int *flag, unsigned timeout_ms) {
  if (dvt_run_until(loop, flag_set, (void *)flag, timeout_ms) != 0) {
    fail_msg("watchdog: nothing happened within %u ms", timeout_ms);
  }
}

const char *dvt_peer_script(const char *name) {
  static char path[512];
  const char *dir = getenv("DVOICE_INTEROP_DIR");
  snprintf(path, sizeof(path), "%s/peers/%s",
           dir != NULL && *dir != 0 ? dir : DVT_INTEROP_SRCDIR, name);
  return path;
}

/*
 * Two CAs, a server certificate for localhost and 127.0.0.1 signed by the
 * first, and one for another host name signed by the first. P-256 keys,
 * valid for two days. Made at test time: nothing secret is committed.
 */
static const char certs_script[] =
    "set -eu\n"
    "d=$1\n"
    "cd \"$d\"\n"
    "key() {\n"
    "  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \\\n"
    "    -out \"$1\" 2>/dev/null\n"
    "}\n"
    "ca() { # name cn\n"
    "  key \"$1.key\"\n"
    "  openssl req -x509 -new -key \"$1.key\" -out \"$1.pem\" -days 2 \\\n"
    "    -subj \"/CN=$2\" \\\n"
    "    -addext basicConstraints=critical,CA:TRUE \\\n"
    "    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null\n"
    "}\n"
    "leaf() { # name cn san ca\n"
    "  key \"$1.key\"\n"
    "  openssl req -new -key \"$1.key\" -out \"$1.csr\" -subj \"/CN=$2\" \\\n"
    "    2>/dev/null\n"
    "  printf 'subjectAltName=%s\\nbasicConstraints=CA:FALSE\\n' \"$3\" \\\n"
    "    > \"$1.ext\"\n"
    "  printf 'extendedKeyUsage=serverAuth\\n' >> \"$1.ext\"\n"
    "  openssl x509 -req -in \"$1.csr\" -CA \"$4.pem\" -CAkey \"$4.key\" \\\n"
    "    -CAcreateserial \\\n"
    "    -out \"$1.pem\" -days 2 -extfile \"$1.ext\" 2>/dev/null\n"
    "}\n"
    "ca ca \"dvoice test CA\"\n"
    "ca otherca \"dvoice other CA\"\n"
    "leaf server localhost \"DNS:localhost,IP:127.0.0.1\" ca\n"
    "leaf wrong wrong.example \"DNS:wrong.example\" ca\n";

void dvt_certs_make(dvt_certs *c) {
  char cmd[512];
  FILE *f;
  memset(c, 0, sizeof(*c));
  snprintf(c->dir, sizeof(c->dir), "/tmp/dvoice-certs-XXXXXX");
  assert_non_null(mkdtemp(c->dir));
  snprintf(cmd, sizeof(cmd), "%s/make_certs.sh", c->dir);
  f = fopen(cmd, "w");
  assert_non_null(f);
  assert_int_equal(fputs(certs_script, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
  snprintf(cmd, sizeof(cmd), "sh '%s/make_certs.sh' '%s'", c->dir, c->dir);
  if (system(cmd) != 0) {
    fail_msg("certificate generation failed: %s", cmd);
  }
  snprintf(c->ca, sizeof(c->ca), "%s/ca.pem", c->dir);
  snprintf(c->otherca, sizeof(c->otherca), "%s/otherca.pem", c->dir);
  snprintf(c->server_cert, sizeof(c->server_cert), "%s/server.pem", c->dir);
  snprintf(c->server_key, sizeof(c->server_key), "%s/server.key", c->dir);
  snprintf(c->wrong_cert, sizeof(c->wrong_cert), "%s/wrong.pem", c->dir);
  snprintf(c->wrong_key, sizeof(c->wrong_key), "%s/wrong.key", c->dir);
}

void dvt_certs_remove(dvt_certs *c) {
  char cmd[256];
  if (c->dir[0] != 0 && strncmp(c->dir, "/tmp/dvoice-certs-", 18) == 0) {
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
    if (system(cmd) != 0) {
      fprintf(stderr, "# could not remove %s\n", c->dir);
    }
  }
  c->dir[0] = 0;
}

static void peer_handle_closed(uv_handle_t *h) {
  dvt_peer *p = h->data;
  p->open--;
}

static void peer_exit(uv_process_t *proc, int64_t status, int sig) {
  dvt_peer *p = proc->data;
  p->exited = 1;
  p->exit_status = status;
  p->term_signal = sig;
}

static void peer_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  dvt_peer *p = h->data;
  (void)hint;
  *buf = uv_buf_init(p->rbuf, sizeof(p->rbuf));
}

static void peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  dvt_peer *p = s->data;
  if (n > 0) {
    assert_int_equal(dv_buf_append(&p->text, buf->base, (size_t)n), 0);
    if (getenv("DVT_VERBOSE") != NULL) {
      fprintf(stderr, "[peer] %.*s", (int)n, buf->base);
    }
  } else if (n < 0) {
    uv_read_stop(s);
  }
}

void dvt_peer_start(dvt_peer *p, uv_loop_t *loop, const char *npm_peers,
                    const char *script, const char *const *args) {
  char *argv[16];
  char node_path[512];
  char *env[4];
  uv_process_options_t o;
  uv_stdio_container_t stdio[3];
  size_t n = 0;
  int rv;
  memset(p, 0, sizeof(*p));
  p->loop = loop;
  dv_buf_init(&p->text, NULL);
  argv[n++] = "node";
  argv[n++] = (char *)script;
  for (size_t i = 0; args != NULL && args[i] != NULL && n < 15; i++) {
    argv[n++] = (char *)args[i];
  }
  argv[n] = NULL;
  snprintf(node_path, sizeof(node_path), "NODE_PATH=%s/node_modules",
           npm_peers);
  env[0] = node_path;
  {
    static char path_env[1024];
    const char *path = getenv("PATH");
    snprintf(path_env, sizeof(path_env), "PATH=%s",
             path != NULL ? path : "/usr/local/bin:/usr/bin:/bin");
    env[1] = path_env;
  }
  env[2] = NULL;
  assert_int_equal(uv_pipe_init(loop, &p->out, 0), 0);
  assert_int_equal(uv_pipe_init(loop, &p->in, 0), 0);
  p->out.data = p->in.data = p->proc.data = p;
  p->open = 2;
  memset(&o, 0, sizeof(o));
  o.file = "node";
  o.args = argv;
  o.env = env;
  o.exit_cb = peer_exit;
  stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
  stdio[0].data.stream = (uv_stream_t *)&p->in;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&p->out;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  o.stdio = stdio;
  o.stdio_count = 3;
  rv = uv_spawn(loop, &p->proc, &o);
  p->open++; /* the process handle must be closed even if spawn failed */
  if (rv != 0) {
    fail_msg("cannot spawn node: %s", uv_strerror(rv));
  }
  assert_int_equal(uv_read_start((uv_stream_t *)&p->out, peer_alloc, peer_read),
                   0);
}

/* Finds an unconsumed line starting with |prefix|; returns its start. */
static char *find_line(dvt_peer *p, const char *prefix) {
  char *s = (char *)p->text.data;
  size_t plen = strlen(prefix);
  if (s == NULL) {
    return NULL;
  }
  while (*s != 0) {
    char *nl = strchr(s, '\n');
    if (nl == NULL) {
      return NULL; /* an incomplete last line */
    }
    if ((size_t)(nl - s) >= plen && memcmp(s, prefix, plen) == 0) {
      return s;
    }
    s = nl + 1;
  }
  return NULL;
}

typedef struct wait_ctx {
  dvt_peer *p;
  const char *prefix;
} wait_ctx;

static int line_there(void *ud) {
  wait_ctx *w = ud;
  return find_line(w->p, w->prefix) != NULL || w->p->exited;
}

int dvt_peer_has(dvt_peer *p, const char *prefix) {
  return find_line(p, prefix) != NULL;
}

void dvt_peer_wait(dvt_peer *p, const char *prefix, char *rest, size_t restlen,
                   unsigned timeout_ms) {
  wait_ctx w = {p, prefix};
  char *line;
  dvt_run_until(p->loop, line_there, &w, timeout_ms);
  line = find_line(p, prefix);
  if (line == NULL) {
    fail_msg("peer never printed \"%s\" (exited %d); its output:\n%s", prefix,
             p->exited, p->text.data != NULL ? (char *)p->text.data : "");
  }
  if (rest != NULL) {
    char *nl = strchr(line, '\n');
    size_t n = (size_t)(nl - line) - strlen(prefix);
    if (n >= restlen) {
      n = restlen - 1;
    }
    memcpy(rest, line + strlen(prefix), n);
    rest[n] = 0;
  }
  line[0] = '#'; /* consumed */
}

static int peer_exited(void *ud) {
  return ((dvt_peer *)ud)->exited;
}

static int peer_closed(void *ud) {
  dvt_peer *p = ud;
  return p->open == 0;
}

void dvt_peer_stop(dvt_peer *p) {
  if (!p->exited) {
    uv_process_kill(&p->proc, SIGTERM);
  }
  uv_close((uv_handle_t *)&p->in, peer_handle_closed);
  uv_close((uv_handle_t *)&p->out, peer_handle_closed);
  /* Wait for the exit callback before closing the process handle. */
  dvt_run_until(p->loop, peer_exited, p, 10000);
  uv_close((uv_handle_t *)&p->proc, peer_handle_closed);
  dvt_run_until(p->loop, peer_closed, p, 10000);
  assert_int_equal(p->open, 0);
  dv_buf_free(&p->text);
}

static void closed_noop(uv_handle_t *h) {
  *(int *)h->data = 1;
}

int dvt_closed_port(uv_loop_t *loop) {
  uv_tcp_t t;
  struct sockaddr_in a;
  struct sockaddr_storage got;
  int len = sizeof(got), done = 0;
  assert_int_equal(uv_tcp_init(loop, &t), 0);
  t.data = &done;
  assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
  assert_int_equal(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), 0);
  assert_int_equal(uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len), 0);
  uv_close((uv_handle_t *)&t, closed_noop);
  dvt_run_flag(loop, &done, 5000);
  return ntohs(((struct sockaddr_in *)&got)->sin_port);
}
