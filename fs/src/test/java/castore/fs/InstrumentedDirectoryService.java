package castore.fs;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.service.DirectoryService;
import java.io.IOException;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** Wraps a directory service: records which Directories were fetched, and can hide stored ones (as if lost). */
final class InstrumentedDirectoryService implements DirectoryService {
    private final DirectoryService inner;
    final Set<B3Digest> fetched = ConcurrentHashMap.newKeySet();
    final Set<B3Digest> hidden = ConcurrentHashMap.newKeySet();

    InstrumentedDirectoryService(DirectoryService inner) {
        this.inner = inner;
    }

    @Override
    public Optional<Directory> get(B3Digest digest) throws IOException {
        fetched.add(digest);
        return hidden.contains(digest) ? Optional.empty() : inner.get(digest);
    }

    @Override
    public boolean has(B3Digest digest) throws IOException {
        return inner.has(digest);
    }

    @Override
    public B3Digest put(Directory directory) throws IOException {
        return inner.put(directory);
    }
}
