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
import socket
import struct
import time
from unittest import mock

import testtools

from osc_snapphase.simulator import client
from osc_snapphase.simulator import faults
from osc_snapphase.tests.functional.simulator import base
from osc_snapphase.tests.unit.simulator import test_faults as unit


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
        # The refusal ends: wait for it (an event), not for a second.
        deadline = time.monotonic() + 60
        while True:
            try:
                reply = self.call('GET', '/compute/v2.1/servers')
                break
            except OSError:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
        self.assertEqual(200, reply.status)


class TestQuietServer(testtools.TestCase):
    """A client that resets its connection costs no traceback."""

    def test_disconnects_are_quiet_other_errors_are_not(self):
        server = faults.ThreadingWSGIServer(('127.0.0.1', 0), unit.json_app)
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
        server = faults.ThreadingWSGIServer(('127.0.0.1', 0), unit.json_app)
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
