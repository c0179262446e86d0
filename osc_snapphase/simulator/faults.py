#   Licensed under the Apache License, Version 2.0 (the "License"); you may
#   not use this file except in compliance with the License. You may obtain
#   a copy of the License at
#
#        http://www.apache.org/licenses/LICENSE-2.0
#
#   Unless required by applicable law or agreed to in writing, software
#   distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#   WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#   License for the specific language governing permissions and limitations
#   under the License.

"""HTTP faults as a WSGI middleware, for any OpenStack API application.

A rule is a dict: ``kind`` (one of KINDS), ``count`` (how many more
requests it faults; None: all), optional ``endpoint`` (the name that
``endpoint(environ)`` gives the request), ``method`` and ``path`` (a
regular expression searched in PATH_INFO), and the kind's fields:

``status``
  answer ``code`` (503) with ``retry_after`` and ``body`` (default: the
  service's own error body) without calling the application.
``reset``
  close the connection without an answer (with a TCP reset when the
  server is run with :class:`RequestHandler`).
``refuse_for``
  as ``reset``, and so for every request during ``seconds`` (1.0).
``delay``
  sleep ``seconds`` (1.0), then call the application.
``malformed``
  ``variant`` ``html200`` or ``html500`` (an HTML proxy page) or
  ``truncated`` (half of the application's body).

The rule store is a plain list owned by the caller, who may change it at
any time under ``lock``.
"""

import http
import json
import logging
import re
import socket
import socketserver
import struct
import sys
import threading
import time
from wsgiref import simple_server

from osc_snapphase.simulator import cloud as cloud_mod

LOG = logging.getLogger(__name__)
KINDS = ('status', 'reset', 'refuse_for', 'delay', 'malformed')
ENDPOINTS = ('keystone', 'compute', 'image', 'volume')
#: environ key of a callable that makes the coming close a TCP reset.
RESET_KEY = 'osc_snapphase.reset'
HTML_PAGE = (b'<html><head><title>502 Bad Gateway</title></head><body>'
             b'<center><h1>502 Bad Gateway</h1></center><hr>'
             b'<center>nginx</center></body></html>')
#: what a client sees when its connection is dropped or reset.
DISCONNECTS = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


class Dropped(ConnectionAbortedError):
    """Raised to the WSGI server: close the connection, send nothing.

    wsgiref's handler ends such a request quietly.
    """


def check(rule):
    """Return a checked copy of a rule (``match`` keys are merged in)."""
    rule = dict(rule)
    rule.update(rule.pop('match', None) or {})
    if rule.get('kind') not in KINDS:
        raise ValueError('kind must be one of %s' % (KINDS,))
    if rule.get('endpoint') not in (None,) + ENDPOINTS:
        raise ValueError('endpoint must be one of %s' % (ENDPOINTS,))
    if rule.get('path'):
        try:
            re.compile(rule['path'])
        except re.error as exc:
            raise ValueError('path is not a regular expression: %s (%r)'
                             % (exc, rule['path']))
    rule.setdefault('count', 1)
    return rule


def error_body(endpoint, code):
    """(content type, body) of an error as the service's API writes it."""
    if endpoint == 'image':
        return 'text/html; charset=UTF-8', (
            '<html>\n <head>\n  <title>%d Fault</title>\n </head>\n <body>\n'
            '  <h1>%d Fault</h1>\n  Simulated fault<br /><br />\n\n\n'
            ' </body>\n</html>' % (code, code)).encode()
    if endpoint == 'keystone':
        body = {'error': {'code': code, 'title': 'Fault',
                          'message': 'Simulated fault'}}
    else:
        key = 'computeFault' if code >= 500 else 'badRequest'
        body = {key: {'code': code, 'message': 'Simulated fault'}}
    return 'application/json', json.dumps(body).encode()


def status_line(code):
    """The WSGI status of an HTTP code, e.g. '503 Service Unavailable'."""
    try:
        return '%d %s' % (code, http.HTTPStatus(code).phrase)
    except ValueError:
        return '%d Unknown' % code


class FaultMiddleware:
    """Apply the first matching rule of ``rules`` to each request.

    :param app: the WSGI application of the API(s)
    :param rules: the rule store, a list of dicts (see the module doc)
    :param lock: guards ``rules`` (default: a lock of its own)
    :param endpoint: environ -> the name a rule's ``endpoint`` matches
    :param on_fault: called with (environ, kind) as a fault begins
    """

    def __init__(self, app, rules, lock=None, endpoint=None, on_fault=None):
        self.app = app
        self.rules = rules
        self.lock = lock or threading.Lock()
        self.endpoint = endpoint or (lambda environ: None)
        self.on_fault = on_fault or (lambda environ, kind: None)
        self.refuse_until = 0.0

    def refusing(self):
        return time.monotonic() < self.refuse_until

    def take(self, environ):
        """Consume and return the rule for this request, or None.

        A ``refuse_for`` rule starts its refusal here, under the lock.
        """
        method = environ['REQUEST_METHOD']
        method = 'GET' if method == 'HEAD' else method
        path = environ.get('PATH_INFO', '')
        endpoint = self.endpoint(environ)

        def matches(rule):
            return (rule.get('endpoint') in (None, endpoint)
                    and rule.get('method', method).upper() == method
                    and (not rule.get('path')
                         or re.search(rule['path'], path)))
        with self.lock:
            rule = cloud_mod.take_rule(self.rules, matches)
            if rule is not None and rule['kind'] == 'refuse_for':
                self.refuse_until = time.monotonic() + float(
                    rule.get('seconds', 1.0))
            return rule

    def __call__(self, environ, start_response):
        if self.refusing():
            self.on_fault(environ, 'refuse_for')
            self.drop(environ)
        rule = self.take(environ)
        if rule is None:
            return self.app(environ, start_response)
        kind = rule['kind']
        self.on_fault(environ, kind)
        if kind == 'delay':
            time.sleep(float(rule.get('seconds', 1.0)))
            return self.app(environ, start_response)
        if kind in ('reset', 'refuse_for'):
            self.drop(environ)
        if kind == 'status':
            code = int(rule.get('code', 503))
            ctype, body = error_body(self.endpoint(environ), code)
            if rule.get('body') is not None:
                body = rule['body']
                if isinstance(body, str):
                    ctype, body = 'text/html; charset=UTF-8', body.encode()
                else:
                    ctype, body = 'application/json', json.dumps(
                        body).encode()
            headers = [('Content-Type', ctype)]
            if rule.get('retry_after') is not None:
                headers.append(('Retry-After', str(rule['retry_after'])))
            return self.answer(start_response, code, headers, body)
        variant = rule.get('variant', 'html200')
        if variant != 'truncated':
            return self.answer(start_response,
                               500 if variant == 'html500' else 200,
                               [('Content-Type', 'text/html')], HTML_PAGE)
        return self.truncated(environ, start_response)

    @staticmethod
    def drop(environ):
        reset = environ.get(RESET_KEY)
        if reset is not None:
            reset()
        raise Dropped()

    @staticmethod
    def answer(start_response, code, headers, body):
        start_response(status_line(code), headers + [
            ('Content-Length', str(len(body)))])
        return [body]

    def truncated(self, environ, start_response):
        """Half of the application's answer, with a matching length."""
        answer = []

        def keep(status, headers, exc_info=None):
            answer[:] = [status, headers]
        result = self.app(environ, keep)
        try:
            body = b''.join(result)
        finally:
            getattr(result, 'close', lambda: None)()
        body = body[:max(1, len(body) // 2)]
        headers = [(k, v) for k, v in answer[1]
                   if k.lower() != 'content-length']
        start_response(answer[0], headers + [
            ('Content-Length', str(len(body)))])
        return [body]


class RequestHandler(simple_server.WSGIRequestHandler):
    """wsgiref's request handler, with TCP resets and quiet logging.

    A FaultMiddleware behind it resets (RST) the connections it drops;
    requests are logged on stderr only when the server's ``verbose`` is
    true.
    """

    # Headers and body go out in separate writes: without TCP_NODELAY,
    # Nagle's algorithm and delayed ACKs add ~40 ms to every answer.
    disable_nagle_algorithm = True

    def get_environ(self):
        environ = super().get_environ()
        environ[RESET_KEY] = self.reset
        return environ

    def reset(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack('ii', 1, 0))
        except OSError:
            pass

    def log_message(self, fmt, *args):
        if getattr(self.server, 'verbose', False):
            super().log_message(fmt, *args)


class ThreadingWSGIServer(socketserver.ThreadingMixIn,
                          simple_server.WSGIServer):
    """A threading wsgiref server that takes client disconnects quietly.

    A client that resets its connection costs one debug log line (one
    line on stderr when ``verbose``), never a traceback.
    """

    daemon_threads = True
    allow_reuse_address = True
    # One connection per request (wsgiref speaks HTTP/1.0): room for the
    # bursts of many clients, where 5 would make them wait for a SYN retry.
    request_queue_size = 128
    verbose = False

    def __init__(self, address, app, handler=RequestHandler):
        if ':' in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)
        self.set_app(app)

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if isinstance(error, DISCONNECTS):
            if self.verbose:
                LOG.warning('%s: %s', client_address[0], error)
            else:
                LOG.debug('%s: %s', client_address[0], error)
            return
        super().handle_error(request, client_address)
