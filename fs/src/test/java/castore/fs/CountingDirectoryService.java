package castore.fs;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.service.DirectoryService;
import java.io.IOException;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** Wraps a directory service and records which Directories were fetched. */
final class CountingDirectoryService implements DirectoryService {
    private final DirectoryService inner;
    final Set<B3Digest> fetched = ConcurrentHashMap.newKeySet();

    CountingDirectoryService(DirectoryService inner) {
        this.inner = inner;
    }

    @Override
    public Optional<Directory> get(B3Digest digest) throws IOException {
        fetched.add(digest);
        return inner.get(digest);
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
