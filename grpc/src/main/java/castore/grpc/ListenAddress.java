package castore.grpc;

import castore.model.InvalidDataException;
import java.net.InetSocketAddress;
import java.nio.file.Path;

/**
 * Where a daemon listens: a TCP address ({@code 127.0.0.1:8000}, {@code [::1]:8000},
 * {@code host:port}) or a Unix domain socket ({@code unix:///abs/path}).
 */
public sealed interface ListenAddress {

    /** The default: loopback only, tvix's port. */
    ListenAddress DEFAULT = new Tcp("127.0.0.1", 8000);

    record Tcp(String host, int port) implements ListenAddress {
        public InetSocketAddress socketAddress() {
            return new InetSocketAddress(host, port);
        }

        @Override
        public String toString() {
            return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
        }
    }

    record Unix(Path path) implements ListenAddress {
        @Override
        public String toString() {
            return "unix://" + path;
        }
    }

    static ListenAddress parse(String text) {
        if (text == null || text.isBlank()) {
            throw new InvalidDataException("empty listen address");
        }
        if (text.startsWith("unix:")) {
            String path = text.startsWith("unix://") ? text.substring("unix://".length()) : text.substring("unix:".length());
            if (!path.startsWith("/")) {
                throw new InvalidDataException("invalid listen address '" + text + "': expected unix:///absolute/path");
            }
            return new Unix(Path.of(path).normalize());
        }
        String host;
        String port;
        if (text.startsWith("[")) {
            int close = text.indexOf(']');
            if (close < 0 || close + 1 >= text.length() || text.charAt(close + 1) != ':') {
                throw new InvalidDataException("invalid listen address '" + text + "': expected [IPv6]:PORT");
            }
            host = text.substring(1, close);
            port = text.substring(close + 2);
        } else {
            int colon = text.lastIndexOf(':');
            if (colon <= 0 || text.indexOf(':') != colon) {
                throw new InvalidDataException("invalid listen address '" + text + "': expected HOST:PORT, [IPv6]:PORT or unix:///path");
            }
            host = text.substring(0, colon);
            port = text.substring(colon + 1);
        }
        return new Tcp(host, parsePort(text, port));
    }

    private static int parsePort(String text, String port) {
        try {
            int p = Integer.parseInt(port);
            if (p < 0 || p > 65535) {
                throw new NumberFormatException();
            }
            return p;
        } catch (NumberFormatException e) {
            throw new InvalidDataException("invalid listen address '" + text + "': port '" + port + "' is not 0-65535");
        }
    }
}
