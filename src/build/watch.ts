// `baton up --watch`: watches the directories of the functions' source files (editors often
// replace a file rather than write it, which a watch on the file itself would miss) and calls
// back once per burst of changes to any of those files.
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

const SETTLE_MS = 150;

export interface SourceWatch {
  close(): void;
}

export function watchSources(files: string[], onChange: (changed: string[]) => void): SourceWatch {
  const wanted = new Set(files);
  const changed = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  const watchers: FSWatcher[] = [...new Set(files.map((f) => path.dirname(f)))].map((dir) =>
    watch(dir, (_event, name) => {
      const file = name && path.join(dir, name.toString());
      if (!file || !wanted.has(file)) return;
      changed.add(file);
      clearTimeout(timer);
      timer = setTimeout(() => {
        const batch = [...changed];
        changed.clear();
        onChange(batch);
      }, SETTLE_MS);
    }),
  );
  return {
    close() {
      clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
