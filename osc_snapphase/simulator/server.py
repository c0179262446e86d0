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

"""HTTP plumbing: routing, authentication, fault injection and counting."""

import http.server
import logging
import re
import socket
import struct
import time

from osc_snapphase.simulator import cinder
from osc_snapphase.simulator import cloud as cloud_mod
from osc_snapphase.simulator import control
from osc_snapphase.simulator import glance
from osc_snapphase.simulator import keystone
from osc_snapphase.simulator import nova
from osc_snapphase.simulator import rest

LOG = logging.getLogger(__name__)
SERVICES = (('/identity', 'keystone'), ('/compute', 'compute'),
            ('/image', 'image'), ('/volume', 'volume'))
HTTP_FAULT_KINDS = ('status', 'reset', 'refuse_for', 'delay', 'malformed')
HTML_PAGE = (b'<html><head><title>502 Bad Gateway</title></head><body>'
             b'<center><h1>502 Bad Gateway</h1></center><hr>'
             b'<center>nginx</center></body></html>')


def build_router():
    router = rest.Router()
    keystone.register(router)
    nova.register(router)
    glance.register(router)
    cinder.register(router)
    return router


def service_of(path):
    for prefix, name in SERVICES:
        if path == prefix or path.startswith(prefix + '/'):
            return name
    return None


def take_http_fault(cloud, method, path, service):
    """Return the first matching HTTP fault rule, consuming one count."""
    def matches(rule):
        return ((not rule.get('endpoint') or rule['endpoint'] == service)
                and (not rule.get('method')
                     or rule['method'].upper() == method)
                and (not rule.get('path') or re.search(rule['path'], path)))
    return cloud_mod.take_rule(cloud.http_faults, matches)


def _default_fault_body(service, code):
    if service == 'image':
        return rest.html_error(code, 'Service Unavailable',
                               'Simulated fault').body
    key = 'computeFault' if code >= 500 else 'badRequest'
    if service == 'keystone':
        return {'error': {'code': code, 'title': 'Fault',
                          'message': 'Simulated fault'}}
    return {key: {'code': code, 'message': 'Simulated fault'}}


class SimServer(http.server.ThreadingHTTPServer):
    """The loopback HTTP server that carries the whole simulated cloud."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, cloud, address, verbose=False):
        if ':' in address[0]:
            self.address_family = socket.AF_INET6
        self.cloud = cloud
        self.verbose = verbose
        self.router = build_router()
        self.refuse_until = 0.0
        super().__init__(address, Handler)
        cloud.port = self.server_address[1]

    def verify_request(self, request, client_address):
        return time.monotonic() >= self.refuse_until


class Handler(http.server.BaseHTTPRequestHandler):
    """Turn one HTTP request into a call of a service handler."""

    protocol_version = 'HTTP/1.1'
    server_version = 'snapsim/1.0'
    # Headers and body go out in separate writes: without TCP_NODELAY,
    # Nagle's algorithm and delayed ACKs add ~40 ms to every answer.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if self.server.verbose:
            super().log_message(fmt, *args)

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _drop(self, rst=True):
        if rst:
            try:
                self.connection.setsockopt(socket.SOL_SOCKET,
                                           socket.SO_LINGER,
                                           struct.pack('ii', 1, 0))
            except OSError:
                pass
        self.close_connection = True

    def _send(self, req, resp, truncate=False):
        payload = resp.payload()
        if truncate:
            payload = payload[:max(1, len(payload) // 2)]
        self.send_response(resp.status)
        if payload or resp.status not in (204, 304):
            self.send_header('Content-Type', resp.content_type)
        self.send_header('Content-Length', str(len(payload)))
        rid = 'req-' + control.new_request_id()
        self.send_header('X-Openstack-Request-Id', rid)
        if req is not None and service_of(req.path) == 'compute':
            self.send_header('X-Compute-Request-Id', rid)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(payload)

    def _dispatch(self):
        server = self.server
        cloud = server.cloud
        if time.monotonic() < server.refuse_until:
            self._drop()
            return
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        req = rest.Request(self.command, self.path, self.headers, body)
        if req.path == '/_sim' or req.path.startswith('/_sim/'):
            self._send(req, control.handle(server, req, self.client_address))
            return
        method = 'GET' if self.command == 'HEAD' else self.command
        path = req.path.rstrip('/') or '/'
        route, params = server.router.match(method, path)
        service = route[4] if route else service_of(path)
        entry = {'key': '%s %s' % (method, route[2] if route else path),
                 'method': method, 'path': req.path, 'service': service,
                 'time': time.time(), 'monotonic': time.monotonic(),
                 'status': None, 'fault': None}
        with cloud.lock:
            cloud.requests.append(entry)
            rule = take_http_fault(cloud, method, path, service)
            if rule is not None:
                entry['fault'] = rule['kind']
        truncate = False
        if rule is not None:
            kind = rule['kind']
            if kind == 'delay':
                time.sleep(float(rule.get('seconds', 1.0)))
            elif kind in ('reset', 'refuse_for'):
                if kind == 'refuse_for':
                    server.refuse_until = time.monotonic() + float(
                        rule.get('seconds', 1.0))
                self._drop()
                return
            elif kind == 'status':
                code = int(rule.get('code', 503))
                headers = {}
                if rule.get('retry_after') is not None:
                    headers['Retry-After'] = str(rule['retry_after'])
                fault_body = rule.get('body')
                if fault_body is None:
                    fault_body = _default_fault_body(service, code)
                resp = rest.Response(code, fault_body, headers)
                if isinstance(fault_body, str):
                    resp.content_type = 'text/html; charset=UTF-8'
                entry['status'] = code
                self._send(req, resp)
                return
            elif kind == 'malformed':
                variant = rule.get('variant', 'html200')
                if variant == 'truncated':
                    truncate = True
                else:
                    code = 500 if variant == 'html500' else 200
                    entry['status'] = code
                    self._send(req, rest.Response(
                        code, HTML_PAGE, content_type='text/html'))
                    return
        resp = self._handle(cloud, req, route, params, path, method)
        entry['status'] = resp.status
        self._send(req, resp, truncate)

    def _handle(self, cloud, req, route, params, path, method):
        if route is None:
            if params:
                return rest.error(405, 'computeFault', 'Method %s not '
                                  'allowed on %s' % (method, path))
            return rest.error(404, 'itemNotFound',
                              'The resource could not be found.')
        req.params = params
        req.route = route[2]
        if not route[5]:
            with cloud.lock:
                req.ctx = keystone.context(
                    cloud, req.headers.get('X-Auth-Token'))
            if req.ctx is None:
                resp = keystone.unauthorized_nova()
                resp.headers['WWW-Authenticate'] = (
                    'Keystone uri="%s/identity"' % cloud.base_url)
                return resp
        compute = route[4] == 'compute' and path.startswith(nova.PREFIX + '/')
        volume = route[4] == 'volume' and path.startswith(cinder.PREFIX + '/')
        if compute or volume:
            error = (nova if compute else cinder).negotiate(req)
            if error is not None:
                return error
        try:
            resp = route[3](cloud, req)
        except rest.BadJSON:
            resp = rest.error(400, 'badRequest',
                              'Malformed request body')
        except Exception as exc:
            LOG.exception('Handler for %s %s failed', method, path)
            resp = rest.error(500, 'computeFault',
                              'Unexpected API Error: %s' % exc)
        if compute or volume:
            (nova if compute else cinder).decorate(req, resp)
        return resp
