package castore.fs;

import castore.fuse.api.FileSystem;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/** Counts the requests a filesystem serves, by method, for tests of kernel caching. */
final class CountingFileSystem {
    private final ConcurrentHashMap<String, LongAdder> calls = new ConcurrentHashMap<>();
    final FileSystem proxy;

    CountingFileSystem(FileSystem target) {
        proxy = (FileSystem) Proxy.newProxyInstance(FileSystem.class.getClassLoader(), new Class<?>[] {FileSystem.class},
                (p, method, args) -> {
                    if (!method.getName().equals("mayBlock")) {
                        calls.computeIfAbsent(method.getName(), k -> new LongAdder()).increment();
                    }
                    try {
                        return method.invoke(target, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
    }

    /** Calls so far by method name, sorted. */
    Map<String, Long> snapshot() {
        var m = new TreeMap<String, Long>();
        calls.forEach((k, v) -> m.put(k, v.sum()));
        return m;
    }
}
