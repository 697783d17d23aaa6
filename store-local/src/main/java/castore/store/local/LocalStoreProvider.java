package castore.store.local;

import castore.model.InvalidDataException;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.StoreProvider;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;
import java.util.Set;

/**
 * {@code local:///abs/dir}: the embedded local store in that directory ({@code Stores.open}
 * maps plain paths and {@code file:} URIs here). Query parameters: {@code fsync=false} skips
 * the fsyncs at commit (still safe against a killed process, not against power loss; for
 * throwaway stores and benchmarks); {@code direct-reads=true|false} says whether large blobs
 * read sequentially go past the page cache (O_DIRECT, {@link castore.io.DirectStream}); the
 * default comes from {@link StoreOptions#directReads()} (on for a mount); {@code digest-reads=true}
 * checks every chunk read by its BLAKE3 digest, also where the index records a CRC32C, which is
 * checked instead by default ({@link ChunkCrc}). An absent store is created unless
 * {@link StoreOptions#createIfMissing()} is off.
 */
public final class LocalStoreProvider implements StoreProvider {
    @Override
    public Set<String> schemes() {
        return Set.of("local");
    }

    @Override
    public Store open(URI address, StoreOptions options) throws IOException {
        LocalStore.Options local = options(address, options);
        return (options.createIfMissing() ? LocalStore.open(path(address), local) : LocalStore.openExisting(path(address), local))
                .asStore();
    }

    static Path path(URI address) {
        String path = address.getPath();
        if ((address.getAuthority() != null && !address.getAuthority().isEmpty()) || path == null || !path.startsWith("/")) {
            throw new InvalidDataException("invalid local store address '" + address + "': expected local:///absolute/path");
        }
        return Path.of(path);
    }

    static LocalStore.Options options(URI address, StoreOptions options) {
        LocalStore.Options o = LocalStore.Options.defaults().withReadOnly(options.readOnly()).withDirectReads(options.directReads());
        String query = address.getQuery();
        if (query == null || query.isEmpty()) {
            return o;
        }
        for (String parameter : query.split("&")) {
            switch (parameter) {
                case "fsync=true" -> o = o.withSync(true);
                case "fsync=false" -> o = o.withSync(false);
                case "direct-reads=true" -> o = o.withDirectReads(true);
                case "direct-reads=false" -> o = o.withDirectReads(false);
                case "digest-reads=true" -> o = o.withDigestReads(true);
                case "digest-reads=false" -> o = o.withDigestReads(false);
                default -> throw new InvalidDataException("invalid local store address '" + address
                        + "': unknown parameter '" + parameter + "' (known: fsync=true|false, direct-reads=true|false, digest-reads=true|false)");
            }
        }
        return o;
    }
}
