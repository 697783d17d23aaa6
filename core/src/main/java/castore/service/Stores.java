package castore.service;

import castore.model.InvalidDataException;
import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;
import java.util.TreeSet;

/**
 * Opens stores by address. An address is a URI ({@code memory://}, {@code local:///abs/dir},
 * {@code grpc+http://host:port}, {@code s3://bucket/prefix?...}) or a plain path, which means
 * the local store in that directory.
 */
public final class Stores {
    private Stores() {
    }

    /** The default local store: $CASTORE_STORE or $HOME/.local/share/castore. */
    public static Path defaultStorePath() {
        String env = System.getenv("CASTORE_STORE");
        if (env != null && !env.isEmpty()) {
            return Path.of(env);
        }
        // ~ is $HOME, as the shell has it: the JVM's user.home is the passwd entry's home, which a
        // HOME set for a service, a sandbox or a test does not change.
        String home = System.getenv("HOME");
        if (home == null || !home.startsWith("/")) {
            home = System.getProperty("user.home");
        }
        return Path.of(home, ".local", "share", "castore");
    }

    /**
     * Parses an address; a string without a scheme is a local store directory. A scheme written
     * without "//" ({@code memory:}, {@code grpc+unix:/run/s.sock}) is refused, not taken for a
     * directory of that name.
     */
    public static URI parseAddress(String address) {
        if (address == null || address.isBlank()) {
            throw new InvalidDataException("empty store address");
        }
        if (!address.contains("://")) {
            int colon = address.indexOf(':');
            String scheme = colon > 0 ? address.substring(0, colon) : "";
            boolean looksLikeUri = scheme.matches("[A-Za-z][A-Za-z0-9+.-]*")
                    && (colon == address.length() - 1 || address.charAt(colon + 1) == '/');
            if (colon > 0 && (looksLikeUri || knownSchemes().contains(scheme))) {
                // "memory:" or "grpc+unix:/run/s.sock" would otherwise name a directory here.
                throw new InvalidDataException("invalid store address '" + address + "': write " + scheme + "://"
                        + (scheme.equals("memory") ? "" : "...") + " (a directory whose name starts with '" + scheme
                        + ":' is ./" + address + ")");
            }
            return Path.of(address).toAbsolutePath().normalize().toUri();
        }
        try {
            // "memory://" has an empty authority and no path, which java.net.URI rejects.
            return new URI(address.endsWith("://") ? address + "/" : address);
        } catch (URISyntaxException e) {
            throw new InvalidDataException("invalid store address '" + address + "': " + e.getMessage());
        }
    }

    public static Store open(String address, StoreOptions options) throws IOException {
        return open(parseAddress(address), options);
    }

    public static Store open(URI address, StoreOptions options) throws IOException {
        String scheme = address.getScheme() == null ? "local" : address.getScheme();
        if (scheme.equals("file")) {
            String host = address.getRawAuthority();
            if (host != null && !host.isEmpty() && !host.equals("localhost")) {
                // file://data/store is host "data", path "/store": never silently the wrong directory.
                throw new InvalidDataException("invalid store address '" + address + "': '" + host
                        + "' is a host name; expected file:///absolute/path");
            }
            scheme = "local";
            address = URI.create("local://" + address.getRawPath() + (address.getRawQuery() == null ? "" : "?" + address.getRawQuery()));
        }
        for (StoreProvider p : ServiceLoader.load(StoreProvider.class)) {
            if (p.schemes().contains(scheme)) {
                return p.open(address, options);
            }
        }
        throw new InvalidDataException("unsupported store address '" + address + "': known schemes are " + knownSchemes());
    }

    /** The schemes of every store provider on the class path, and {@code file}. */
    private static TreeSet<String> knownSchemes() {
        TreeSet<String> known = new TreeSet<>(List.of("file"));
        for (StoreProvider p : ServiceLoader.load(StoreProvider.class)) {
            known.addAll(p.schemes());
        }
        return known;
    }

    /**
     * Opens the store at {@code storeAddress} and replaces its blob and/or directory service by
     * those at the override addresses (null: no override).
     */
    public static Store open(String storeAddress, String blobAddress, String directoryAddress, StoreOptions options)
            throws IOException {
        Store store = open(storeAddress, options);
        if (blobAddress == null && directoryAddress == null) {
            return store;
        }
        List<AutoCloseable> extra = new ArrayList<>();
        try {
            BlobService blobs = store.blobs();
            DirectoryService directories = store.directories();
            if (blobAddress != null) {
                Store b = open(blobAddress, options);
                extra.add(b);
                blobs = b.blobs();
            }
            if (directoryAddress != null) {
                Store d = open(directoryAddress, options);
                extra.add(d);
                directories = d.directories();
            }
            return store.with(blobs, directories, extra);
        } catch (IOException | RuntimeException e) {
            for (AutoCloseable c : extra) {
                try {
                    c.close();
                } catch (Exception ignored) {
                    // already failing
                }
            }
            store.close();
            throw e;
        }
    }
}
