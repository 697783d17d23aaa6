package castore.service.memory;

import castore.model.Name;
import castore.model.Node;
import castore.service.RootService;
import java.util.Optional;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.stream.Stream;

/** Root names in a sorted concurrent map. */
public final class MemoryRootService implements RootService {
    private final ConcurrentSkipListMap<Name, Node> roots = new ConcurrentSkipListMap<>();

    @Override
    public Optional<Node> get(Name name) {
        return Optional.ofNullable(roots.get(name));
    }

    @Override
    public void put(Name name, Node node) {
        roots.put(name, node);
    }

    @Override
    public boolean remove(Name name) {
        return roots.remove(name) != null;
    }

    @Override
    public Stream<Node.NamedNode> list() {
        return roots.entrySet().stream().map(e -> new Node.NamedNode(e.getKey(), e.getValue()));
    }
}
