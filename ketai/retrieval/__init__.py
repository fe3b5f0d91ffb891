"""Integration-exercise retrieval: offline embedding function, Chroma store, ranking.

* ``embedding_function`` -- the bundled model as a registered Chroma embedding function;
* ``documents`` -- how an exercise becomes Chroma records (texts, ids, flat metadata);
* ``store`` -- the Chroma collection: open (persistent or HTTP), sync by content hash, query;
* ``index`` -- library + store kept in step lazily (``default_index()``);
* ``ranking`` -- ``recommend(query, PatientContext, k)`` for the session engine (pure scoring);
* ``search`` -- plain search for ``ketai exercises search``;
* ``langchain`` -- ``ExerciseRetriever``, a LangChain retriever over the same store.

Nothing is imported here, so ``import ketai.retrieval.ranking`` stays cheap; Chroma loads on first use.
"""
