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

"""JSON answers of the HTTP views of the in-process cloud's test doubles."""

import json

_REASONS = {200: 'OK', 201: 'Created', 204: 'No Content',
            300: 'Multiple Choices', 400: 'Bad Request',
            401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
            405: 'Method Not Allowed', 409: 'Conflict'}


def json_response(start_response, status, body=None, headers=()):
    """Answer a WSGI request with ``body`` as JSON (None: no body)."""
    data = b'' if body is None else json.dumps(body).encode('utf-8')
    hdrs = [('Content-Type', 'application/json'),
            ('Content-Length', str(len(data)))] + list(headers)
    start_response('%d %s' % (status, _REASONS.get(status, 'Status')), hdrs)
    return [data]
