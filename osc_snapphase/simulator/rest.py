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

"""Request and response objects shared by the simulated services."""

import json
import re
import urllib.parse


class Request:
    """One parsed HTTP request as the service handlers see it."""

    def __init__(self, method, raw_path, headers, body):
        self.method = method
        parsed = urllib.parse.urlsplit(raw_path)
        self.path = parsed.path
        self.query = urllib.parse.parse_qs(parsed.query,
                                           keep_blank_values=True)
        self.headers = headers
        self.body = body
        self.params = {}
        self.ctx = None
        self.microversion = None

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self):
        if not self.body:
            return None
        try:
            return json.loads(self.body.decode('utf-8'))
        except ValueError:
            raise BadJSON()


class BadJSON(Exception):
    """The request body is not valid JSON."""


class Response:
    """A response: status, headers and a body (dict, bytes or None)."""

    def __init__(self, status=200, body=None, headers=None,
                 content_type='application/json'):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.content_type = content_type

    def payload(self):
        if self.body is None:
            return b''
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode('utf-8')
        return json.dumps(self.body).encode('utf-8')


def since(mv, *fields):
    """The fields a body has at microversion ``mv``.

    ``fields``: ``(version, key, value)``, the microversion that added
    each one; returns ``{key: value}`` of those that ``mv`` reaches.
    """
    return {key: value for version, key, value in fields if mv >= version}


def version_doc(version_id, min_version, max_version, updated, links,
                media_type):
    """The document of one version of a microversioned API (Nova, Cinder)."""
    return {
        'id': version_id, 'status': 'CURRENT',
        'version': '%d.%d' % max_version,
        'min_version': '%d.%d' % min_version,
        'updated': updated,
        'links': links,
        'media-types': [{'base': 'application/json', 'type': media_type}],
    }


def error(status, key, message):
    """Return an error in the Nova style: {key: {code, message}}."""
    return Response(status, {key: {'code': status, 'message': message}})


def html_error(status, title, detail):
    """Return an HTML error page, as Glance and webob do."""
    page = ('<html>\n <head>\n  <title>%(s)d %(t)s</title>\n </head>\n'
            ' <body>\n  <h1>%(s)d %(t)s</h1>\n  %(d)s<br /><br />\n\n\n'
            ' </body>\n</html>' % {'s': status, 't': title, 'd': detail})
    return Response(status, page, content_type='text/html; charset=UTF-8')


class Router:
    """Match method and path against templates like /servers/{id}."""

    def __init__(self):
        self._routes = []

    def add(self, method, template, handler, service, public=False):
        pattern = re.sub(r'\\{(\w+)\\}', r'(?P<\1>[^/]+)',
                         re.escape(template))
        self._routes.append((method, re.compile(pattern + '$'), template,
                             handler, service, public))

    def match(self, method, path):
        """Return (route, params), or (None, allowed_methods)."""
        allowed = []
        for route in self._routes:
            found = route[1].match(path)
            if found:
                if route[0] == method:
                    return route, found.groupdict()
                allowed.append(route[0])
        return None, allowed
