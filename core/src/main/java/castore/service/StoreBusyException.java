package castore.service;

import java.io.IOException;

/** The store is in use in a way that forbids the operation (e.g. GC while an import runs). */
public class StoreBusyException extends IOException {
    public StoreBusyException(String message) {
        super(message);
    }
}
