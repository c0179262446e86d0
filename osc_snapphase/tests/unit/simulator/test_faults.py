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

"""faults.FaultMiddleware on a plain WSGI app, without sockets."""

import json
from unittest import mock

import testtools

from osc_snapphase.simulator import faults


def json_app(environ, start_response):
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
            json_app, self.rules, endpoint=lambda environ: 'compute',
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

    def test_status_dict_body_is_json_on_the_image_endpoint(self):
        # Glance's own errors are HTML; a JSON body given by the rule is
        # sent as JSON.
        self.app.endpoint = lambda environ: 'image'
        self.add('status', code=409, body={'message': 'conflict'})
        status, headers, body = self.request()
        self.assertEqual(('409 Conflict', 'application/json'),
                         (status, headers['Content-Type']))
        self.assertEqual({'message': 'conflict'}, json.loads(body))

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

    def test_refuse_for_starts_when_the_rule_is_taken(self):
        # take() starts the refusal under the lock that guards the rules.
        lock = mock.MagicMock()
        self.app.lock = lock
        lock.__enter__.side_effect = lambda: self.assertEqual(
            0.0, self.app.refuse_until)
        lock.__exit__.side_effect = lambda *exc: self.assertEqual(
            1030.0, self.app.refuse_until)
        self.add('refuse_for', seconds=30)
        environ = {'REQUEST_METHOD': 'GET', 'PATH_INFO': '/v2.1/servers'}
        with mock.patch('time.monotonic', return_value=1000.0):
            self.assertEqual('refuse_for', self.app.take(environ)['kind'])
        self.assertEqual(1030.0, self.app.refuse_until)
        lock.__exit__.assert_called_once_with(None, None, None)

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
        whole = b''.join(json_app({}, lambda *a: None))
        self.assertEqual(whole[:len(whole) // 2], body)
        self.assertRaises(ValueError, json.loads, body)

    def test_check(self):
        self.assertEqual({'kind': 'reset', 'endpoint': 'volume', 'count': 1},
                         faults.check({'kind': 'reset',
                                       'match': {'endpoint': 'volume'}}))
        for bad in ({'kind': 'explode'}, {'kind': 'reset', 'endpoint': 'x'},
                    {'kind': 'delay', 'path': '('}):
            self.assertRaises(ValueError, faults.check, bad)
        error = self.assertRaises(ValueError, faults.check,
                                  {'kind': 'reset', 'path': '('})
        self.assertIn("path is not a regular expression", str(error))
