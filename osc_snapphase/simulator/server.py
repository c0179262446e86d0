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

"""The simulator's WSGI application: routing, authentication, counting.

The API applications are wrapped in the fault middleware (faults.py);
the control endpoint (/_sim) is not, so it stays reachable during a
fault.
"""

import email.message
import logging
import time

from osc_snapphase.simulator import cinder
from osc_snapphase.simulator import control
from osc_snapphase.simulator import faults
from osc_snapphase.simulator import glance
from osc_snapphase.simulator import keystone
from osc_snapphase.simulator import nova
from osc_snapphase.simulator import rest

LOG = logging.getLogger(__name__)
SERVICES = (('/identity', 'keystone'), ('/compute', 'compute'),
            ('/image', 'image'), ('/volume', 'volume'))
ROUTE_KEY = 'osc_snapphase.route'


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


def request_of(environ):
    """The rest.Request of a WSGI request (its body read)."""
    headers = email.message.Message()
    for key, value in environ.items():
        if key.startswith('HTTP_'):
            headers[key[5:].replace('_', '-').title()] = value
        elif key in ('CONTENT_TYPE', 'CONTENT_LENGTH') and value:
            headers[key.replace('_', '-').title()] = value
    length = int(environ.get('CONTENT_LENGTH') or 0)
    body = environ['wsgi.input'].read(length) if length else b''
    path = environ.get('PATH_INFO') or '/'
    if environ.get('QUERY_STRING'):
        path += '?' + environ['QUERY_STRING']
    return rest.Request(environ['REQUEST_METHOD'], path, headers, body)


def respond(start_response, environ, resp):
    payload = resp.payload()
    headers = []
    if payload or resp.status not in (204, 304):
        headers.append(('Content-Type', resp.content_type))
    headers.append(('Content-Length', str(len(payload))))
    headers += list(resp.headers.items())
    start_response(faults.status_line(resp.status), headers)
    return [b'' if environ['REQUEST_METHOD'] == 'HEAD' else payload]


class SimServer(faults.ThreadingWSGIServer):
    """The loopback HTTP server that carries the whole simulated cloud."""

    def __init__(self, cloud, address, verbose=False):
        self.cloud = cloud
        self.verbose = verbose
        self.router = build_router()
        self.faults = faults.FaultMiddleware(
            self.api, cloud.http_faults, cloud.lock,
            lambda environ: environ[ROUTE_KEY][1], self.faulted)
        super().__init__(address, self.dispatch)
        cloud.port = self.server_address[1]

    @property
    def refuse_until(self):
        return self.faults.refuse_until

    @refuse_until.setter
    def refuse_until(self, value):
        self.faults.refuse_until = value

    def dispatch(self, environ, start_response):
        """Count the request, then answer it (through the faults)."""
        cloud = self.cloud
        req = request_of(environ)
        if req.path == '/_sim' or req.path.startswith('/_sim/'):
            return respond(start_response, environ, control.handle(
                self, req, (environ['REMOTE_ADDR'],)))
        method = 'GET' if req.method == 'HEAD' else req.method
        path = req.path.rstrip('/') or '/'
        route, params = self.router.match(method, path)
        service = route[4] if route else service_of(path)
        entry = {'key': '%s %s' % (method, route[2] if route else path),
                 'method': method, 'path': req.path, 'service': service,
                 'time': time.time(), 'monotonic': time.monotonic(),
                 'status': None, 'fault': None}
        environ[ROUTE_KEY] = (req, service, route, params, entry)
        with cloud.lock:
            cloud.count_request(entry)
        rid = 'req-' + control.new_request_id()

        def counted(status, headers, exc_info=None):
            entry['status'] = int(status.split()[0])
            headers = headers + [('X-Openstack-Request-Id', rid)]
            if service == 'compute':
                headers.append(('X-Compute-Request-Id', rid))
            return start_response(status, headers, exc_info)
        return self.faults(environ, counted)

    @staticmethod
    def faulted(environ, kind):
        environ[ROUTE_KEY][4]['fault'] = kind

    def api(self, environ, start_response):
        req, _service, route, params, _entry = environ[ROUTE_KEY]
        method = 'GET' if req.method == 'HEAD' else req.method
        resp = self._handle(self.cloud, req, route, params,
                            req.path.rstrip('/') or '/', method)
        return respond(start_response, environ, resp)

    def _handle(self, cloud, req, route, params, path, method):
        if route is None:
            if params:
                return rest.error(405, 'computeFault', 'Method %s not '
                                  'allowed on %s' % (method, path))
            return rest.error(404, 'itemNotFound',
                              'The resource could not be found.')
        req.params = params
        if not route[5]:
            with cloud.lock:
                req.ctx = keystone.context(
                    cloud, req.headers.get('X-Auth-Token'))
            if req.ctx is None:
                resp = keystone.unauthorized()
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
