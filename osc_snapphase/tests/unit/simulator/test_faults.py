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

"""Tests of operation faults and HTTP faults."""

import http.client
import io
import json
import re
import socket
import struct
import time
from unittest import mock

import testtools

from osc_snapphase.simulator import client
from osc_snapphase.simulator import faults
from osc_snapphase.tests.unit.simulator import base


class TestOperationFaults(base.SimulatorTestCase):

    def setUp(self):
        super().setUp()
        self.sid = self.control.create_server('vm1')['id']

    def _image_get(self, image_id, user='demo'):
        return self.call('GET', '/image/v2/images/' + image_id, user=user)

    def test_driver_error_deletes_image(self):
        self.control.add_fault('uploading', 'driver_error')
        image_id = self.create_image(self.sid).body['image_id']
        self.wait_idle(self.sid)
        self.assertEqual(404, self._image_get(image_id).status)
        server = self.call('GET', '/compute/v2.1/servers/' + self.sid,
                           headers={'OpenStack-API-Version':
                                    'compute 2.96'}).body['server']
        self.assertIsNone(server['OS-EXT-STS:task_state'])
        self.assertEqual('active', server['OS-EXT-STS:vm_state'])
        self.assertNotIn('fault', server)
        self.assertEqual('image_uploading', self.task_states(self.sid)[-2])

    def test_driver_error_killed_image(self):
        self.control.add_fault('snapshot', 'driver_error', image='killed')
        image_id = self.create_image(self.sid).body['image_id']
        self.wait_idle(self.sid)
        self.assertEqual('killed', self._image_get(image_id).body['status'])

    def test_stuck_keeps_task_state(self):
        self.control.add_fault('uploading', 'stuck')
        image_id = self.create_image(self.sid).body['image_id']
        self.wait_idle(self.sid)
        time.sleep(0.2)
        self.assertEqual('image_uploading', self.server_field(
            self.sid, 'OS-EXT-STS:task_state'))
        self.assertEqual(404, self._image_get(image_id).status)
        self.assertEqual(409, self.create_image(self.sid).status)
        reset = self.call('POST', '/compute/v2.1/servers/%s/action'
                          % self.sid, {'os-resetState': {'state': 'active'}},
                          user='admin')
        self.assertEqual(202, reset.status)
        self.assertEqual(202, self.create_image(self.sid).status)

    def test_reset_state_needs_admin(self):
        reply = self.call('POST', '/compute/v2.1/servers/%s/action'
                          % self.sid, {'os-resetState': {'state': 'active'}})
        self.assertEqual(403, reply.status)

    def test_stuck_saving(self):
        self.control.add_fault('uploading', 'stuck_saving')
        image_id = self.create_image(self.sid).body['image_id']
        self.wait_idle(self.sid)
        time.sleep(0.2)
        self.assertEqual('saving', self._image_get(image_id).body['status'])
        self.assertEqual('image_uploading', self.server_field(
            self.sid, 'OS-EXT-STS:task_state'))

    def test_vm_error_shows_fault(self):
        self.control.add_fault('snapshot', 'vm_error', message='disk gone')
        self.create_image(self.sid)
        self.wait_idle(self.sid)
        server = self.call('GET', '/compute/v2.1/servers/' + self.sid
                           ).body['server']
        self.assertEqual('ERROR', server['status'])
        self.assertEqual('disk gone', server['fault']['message'])
        self.assertEqual(500, server['fault']['code'])

    def test_server_deleted(self):
        self.control.add_fault('uploading', 'server_deleted')
        image_id = self.create_image(self.sid).body['image_id']
        self.control.wait_for(lambda s: self.control.server(self.sid)[
            'OS-EXT-STS:vm_state'] == 'deleted')
        self.assertIn('deleting', self.task_states(self.sid))
        self.wait_idle(self.sid)
        self.assertEqual(404, self._image_get(image_id).status)
        path = '/compute/v2.1/servers/' + self.sid
        self.assertEqual(404, self.call('GET', path).status)
        # As nova 34: not even an admin gets it by ID.
        self.assertEqual(404, self.call('GET', path, user='admin').status)
        self.assertEqual([], self.control.server(self.sid)[
            'instance_faults'])

    def test_image_deleted(self):
        self.control.add_fault('pending_upload', 'image_deleted')
        image_id = self.create_image(self.sid).body['image_id']
        self.wait_idle(self.sid)
        self.assertIsNone(self.server_field(self.sid,
                                            'OS-EXT-STS:task_state'))
        self.assertEqual(404, self._image_get(image_id).status)

    def test_backup_fault_only_for_backup(self):
        self.control.add_fault('uploading', 'driver_error',
                               operation='createBackup')
        image_id = self.create_image(self.sid).body['image_id']
        self.wait_idle(self.sid)
        self.assertEqual('active', self._image_get(image_id).body['status'])

    def test_bad_fault_rejected(self):
        self.assertRaises(client.ControlError, self.control.add_fault,
                          'nowhere',
                          'driver_error')


class TestHttpFaults(base.SimulatorTestCase):

    def test_status_with_retry_after(self):
        self.token()
        self.control.add_http_fault('status', code=503, retry_after=2,
                                    endpoint='compute', count=1)
        reply = self.call('GET', '/compute/v2.1/servers/detail')
        self.assertEqual(503, reply.status)
        self.assertEqual('2', reply.headers['Retry-After'])
        self.assertEqual(200, self.call('GET', '/compute/v2.1/servers/detail'
                                        ).status)

    def test_malformed(self):
        self.token()
        self.control.add_http_fault('malformed', variant='truncated',
                                    method='GET', path='/servers/detail$')
        reply = self.call('GET', '/compute/v2.1/servers/detail')
        self.assertEqual(200, reply.status)
        self.assertIsNone(reply.body)
        self.control.add_http_fault('malformed', variant='html500',
                                    endpoint='image')
        reply = self.call('GET', '/image/v2/images')
        self.assertEqual(500, reply.status)
        self.assertIn(b'<html>', reply.raw)

    def test_reset_and_delay(self):
        self.token()
        self.control.add_http_fault('reset', endpoint='compute')
        self.assertRaises((ConnectionError, http.client.HTTPException,
                           OSError), self.call, 'GET',
                          '/compute/v2.1/servers')
        self.control.add_http_fault('delay', seconds=0.2, endpoint='image')
        start = time.monotonic()
        self.assertEqual(200, self.call('GET', '/image/v2/images').status)
        self.assertGreaterEqual(time.monotonic() - start, 0.2)

    def test_refuse_for(self):
        self.token()
        self.control.add_http_fault('refuse_for', seconds=1.0,
                                    endpoint='compute')
        self.assertRaises(OSError, self.call, 'GET', '/compute/v2.1/servers')
        sock = socket.create_connection((self.sim.cloud.host,
                                         self.sim.cloud.port))
        sock.sendall(b'GET /identity HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertIn(sock.recv(100), (b'',))
        sock.close()
        time.sleep(1.05)
        self.assertEqual(200, self.call('GET', '/compute/v2.1/servers')
                         .status)


def _app(environ, start_response):
    """An API that answers 200 with a JSON body."""
    body = b'{"servers": [], "padding": "0123456789"}'
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]


class TestFaultMiddleware(testtools.TestCase):
    """faults.FaultMiddleware on a plain WSGI app, without sockets."""

    def setUp(self):
        super().setUp()
        self.rules = []
        self.seen = []
        self.app = faults.FaultMiddleware(
            _app, self.rules, endpoint=lambda environ: 'compute',
            on_fault=lambda environ, kind: self.seen.append(kind))

    def add(self, kind, **rule):
        self.rules.append(faults.check(dict(rule, kind=kind)))

    def request(self, method='GET', path='/v2.1/servers', environ=None):
        env = {'REQUEST_METHOD': method, 'PATH_INFO': path}
        env.update(environ or {})
        answer = {}

        def start_response(status, headers, exc_info=None):
            answer.update(status=status, headers=dict(headers))
        body = b''.join(self.app(env, start_response))
        length = answer['headers'].get('Content-Length')
        self.assertEqual(str(len(body)), length)
        return answer['status'], answer['headers'], body

    def test_no_rule_passes_through(self):
        self.assertEqual('200 OK', self.request()[0])
        self.assertEqual([], self.seen)

    def test_status_retry_after_and_count(self):
        self.add('status', code=429, retry_after=2, count=2)
        for _attempt in range(2):
            status, headers, body = self.request()
            self.assertEqual('429 Too Many Requests', status)
            self.assertEqual('2', headers['Retry-After'])
            self.assertEqual({'badRequest': {
                'code': 429, 'message': 'Simulated fault'}},
                json.loads(body))
        self.assertEqual('200 OK', self.request()[0])
        self.assertEqual(['status', 'status'], self.seen)
        self.assertEqual((0, 2), (self.rules[0]['count'],
                                  self.rules[0]['fired']))

    def test_status_body_of_the_service(self):
        self.assertIn(b'<h1>503 Fault</h1>', faults.error_body(
            'image', 503)[1])
        self.assertEqual({'error': {'code': 401, 'title': 'Fault',
                                    'message': 'Simulated fault'}},
                         json.loads(faults.error_body('keystone', 401)[1]))
        self.add('status', code=502, body='<html>proxy</html>', count=None)
        status, headers, body = self.request()
        self.assertEqual(('502 Bad Gateway', b'<html>proxy</html>'),
                         (status, body))
        self.assertTrue(headers['Content-Type'].startswith('text/html'))

    def test_rule_matching(self):
        self.add('status', endpoint='image')
        self.add('status', method='post')
        self.add('status', path=r'/servers/[0-9a-f-]{36}$', code=500)
        self.assertEqual('200 OK', self.request()[0])
        self.assertEqual('200 OK', self.request('HEAD')[0])
        self.assertEqual('500 Internal Server Error', self.request(
            path='/v2.1/servers/%s' % ('a' * 8 + '-' + 'b' * 27))[0])
        self.assertEqual('503 Service Unavailable',
                         self.request('POST')[0])
        self.assertEqual(1, self.rules[0]['count'])

    def test_reset_drops_and_resets(self):
        reset = mock.Mock()
        self.add('reset')
        self.assertRaises(faults.Dropped, self.request,
                          environ={faults.RESET_KEY: reset})
        reset.assert_called_once_with()
        # A server without the reset hook closes the connection.
        self.add('reset')
        self.assertRaises(ConnectionAbortedError, self.request)
        self.assertEqual('200 OK', self.request()[0])

    def test_refuse_for_drops_every_request_until_it_ends(self):
        self.add('refuse_for', seconds=30)
        with mock.patch('time.monotonic', return_value=1000.0):
            self.assertRaises(faults.Dropped, self.request)
            self.assertEqual(1030.0, self.app.refuse_until)
            self.assertRaises(faults.Dropped, self.request)
        with mock.patch('time.monotonic', return_value=1030.0):
            self.assertEqual('200 OK', self.request()[0])
        self.assertEqual(['refuse_for', 'refuse_for'], self.seen)

    def test_delay_then_the_answer(self):
        self.add('delay', seconds=7)
        with mock.patch('time.sleep') as sleep:
            self.assertEqual('200 OK', self.request()[0])
        sleep.assert_called_once_with(7.0)

    def test_malformed_variants(self):
        self.add('malformed')
        status, headers, body = self.request()
        self.assertEqual(('200 OK', faults.HTML_PAGE), (status, body))
        self.add('malformed', variant='html500')
        self.assertEqual('500 Internal Server Error', self.request()[0])
        self.add('malformed', variant='truncated')
        status, headers, body = self.request()
        self.assertEqual('200 OK', status)
        whole = b''.join(_app({}, lambda *a: None))
        self.assertEqual(whole[:len(whole) // 2], body)
        self.assertRaises(ValueError, json.loads, body)

    def test_check(self):
        self.assertEqual({'kind': 'reset', 'endpoint': 'volume', 'count': 1},
                         faults.check({'kind': 'reset',
                                       'match': {'endpoint': 'volume'}}))
        for bad in ({'kind': 'explode'}, {'kind': 'reset', 'endpoint': 'x'},
                    {'kind': 'delay', 'path': '('}):
            self.assertRaises((ValueError, re.error), faults.check, bad)


class TestQuietServer(testtools.TestCase):
    """A client that resets its connection costs no traceback."""

    def test_disconnects_are_quiet_other_errors_are_not(self):
        server = faults.ThreadingWSGIServer(('127.0.0.1', 0), _app)
        self.addCleanup(server.server_close)
        for error, printed in ((ConnectionResetError(104, 'reset'), False),
                               (BrokenPipeError(32, 'pipe'), False),
                               (RuntimeError('bug'), True)):
            with mock.patch('sys.stderr', new_callable=io.StringIO) as err:
                try:
                    raise error
                except Exception:
                    server.handle_error(None, ('127.0.0.1', 5))
            self.assertEqual(printed, 'Traceback' in err.getvalue(),
                             err.getvalue())

    def test_reset_by_a_client_over_http(self):
        server = faults.ThreadingWSGIServer(('127.0.0.1', 0), _app)
        server.daemon_threads = False   # server_close() joins the handler
        sock = socket.create_connection(server.server_address)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack('ii', 1, 0))
        sock.sendall(b'GET / HTTP/1.1\r\nHost: x\r\nContent-Le')
        sock.close()
        with mock.patch('sys.stderr', new_callable=io.StringIO) as err:
            server.handle_request()
            server.server_close()
        self.assertEqual('', err.getvalue())
