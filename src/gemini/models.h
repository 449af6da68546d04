/* Flags of the model table (gemini/models.def), shared by skiff's catalog and the sim's. */
#ifndef SKIFF_GEMINI_MODELS_H
#define SKIFF_GEMINI_MODELS_H

#define SKIFF_MODEL_V1 0x1        /* also served on /v1 (everything is served on /v1beta) */
#define SKIFF_MODEL_GEMINI3 0x2   /* a Gemini 3.x model: thinkingLevel, one candidate only */
#define SKIFF_MODEL_EMBEDDING 0x4 /* answers embedContent and batchEmbedContents */

#endif
