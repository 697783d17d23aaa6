package castore.service;

import castore.model.B3Digest;
import castore.model.Directory;
import java.io.IOException;
import java.util.Optional;

/**
 * A DirectoryService that passes get, has and put on; tests override what they change or watch.
 * {@link #putClosure} is left to the default, which puts through {@link #put}, so an override
 * of put sees a closure's Directories too.
 */
public class ForwardingDirectoryService implements DirectoryService {
    protected final DirectoryService inner;

    public ForwardingDirectoryService(DirectoryService inner) {
        this.inner = inner;
    }

    @Override
    public Optional<Directory> get(B3Digest digest) throws IOException {
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
